/* config.c: from rcgc_inspect_options and the environment (RCGC_INSPECT,
 * RCGC_INSPECT_TOKEN, RCGC_INSPECT_CONTROL, RCGC_INSPECT_WEB_DIR) to the server's
 * settings, and the one place where listen addresses are parsed. */
#define _XOPEN_SOURCE 700 /* POSIX.1-2008 with XSI: realpath */

#include "internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define DEFAULT_ADDRESS "127.0.0.1:7070"
#define DEFAULT_MAX_CONNECTIONS 64
#define DEFAULT_IDLE_TIMEOUT_S 60
#define DEFAULT_WALK_TIMEOUT_MS 1000

static insp_config g_config = {
    .max_connections = DEFAULT_MAX_CONNECTIONS,
    .idle_timeout_s = DEFAULT_IDLE_TIMEOUT_S,
    .walk_timeout_ms = DEFAULT_WALK_TIMEOUT_MS,
};

const insp_config *rcgc__insp_config(void)
{
    return &g_config;
}

void rcgc__insp_config_reset(void)
{
    free(g_config.token);
    free(g_config.web_dir);
    g_config = (insp_config){
        .max_connections = DEFAULT_MAX_CONNECTIONS,
        .idle_timeout_s = DEFAULT_IDLE_TIMEOUT_S,
        .walk_timeout_ms = DEFAULT_WALK_TIMEOUT_MS,
    };
}

int rcgc__insp_config_set(const insp_config *cfg)
{
    char *token = NULL, *web_dir = NULL;
    if (cfg->token != NULL) {
        token = malloc(cfg->token_len + 1);
        if (token == NULL)
            return RCGC_ENOMEM;
        memcpy(token, cfg->token, cfg->token_len);
        token[cfg->token_len] = '\0';
    }
    if (cfg->web_dir != NULL && (web_dir = strdup(cfg->web_dir)) == NULL) {
        free(token);
        return RCGC_ENOMEM;
    }
    free(g_config.token);
    free(g_config.web_dir);
    g_config = *cfg;
    g_config.token = token;
    g_config.web_dir = web_dir;
    return 0;
}

/* A port: 1 to 5 digits, at most 65535. */
static int parse_port(const char *s, unsigned short *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
        return RCGC_EINVAL;
    unsigned long v = strtoul(s, NULL, 10);
    if (v > 65535)
        return RCGC_EINVAL;
    *out = (unsigned short)v;
    return 0;
}

int rcgc__insp_parse_address(const char *s, struct sockaddr_in *out)
{
    if (s == NULL)
        return RCGC_EINVAL;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    const char *colon = strrchr(s, ':');
    char host[64];
    const char *port_text;
    if (colon == NULL) { /* "7070" */
        strcpy(host, "127.0.0.1");
        port_text = s;
    } else {
        size_t hn = (size_t)(colon - s);
        if (hn >= sizeof host)
            return RCGC_EINVAL;
        memcpy(host, s, hn);
        host[hn] = '\0';
        if (hn == 0 || strcasecmp(host, "localhost") == 0)
            strcpy(host, "127.0.0.1");
        port_text = colon + 1;
    }
    unsigned short port;
    if (parse_port(port_text, &port) != 0)
        return RCGC_EINVAL;
    if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
        return RCGC_EINVAL;
    out->sin_port = htons(port);
    return 0;
}

/* RCGC_INSPECT_CONTROL: 1/true/yes/on allow, 0/false/no/off (or unset, or empty)
 * refuse; anything else is an error. */
static int control_from_env(bool *out)
{
    const char *v = getenv("RCGC_INSPECT_CONTROL");
    if (v == NULL || v[0] == '\0') {
        *out = false;
        return 0;
    }
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return RCGC_EINVAL;
}

/* RCGC_INSPECT_WEB_DIR (a development option: the dashboard read from disk at each
 * request) made absolute, so that the host changing its directory does not move it.
 * Unset or empty: *out = NULL. Returns: 0, RCGC_EINVAL (not a directory) or
 * RCGC_ENOMEM. */
static int web_dir_from_env(char **out)
{
    *out = NULL;
    const char *v = getenv("RCGC_INSPECT_WEB_DIR");
    if (v == NULL || v[0] == '\0')
        return 0;
    char *dir = realpath(v, NULL);
    struct stat st;
    if (dir == NULL || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(dir);
        return RCGC_EINVAL;
    }
    *out = dir;
    return 0;
}

int rcgc__insp_config_resolve(const rcgc_inspect_options *opts, insp_config *cfg)
{
    static const rcgc_inspect_options none = {.allow_control = -1};
    if (opts == NULL)
        opts = &none;
    memset(cfg, 0, sizeof *cfg);

    const char *address = opts->address;
    if (address == NULL) {
        address = getenv("RCGC_INSPECT");
        /* RCGC_INSPECT=1 (or empty) asks for the inspector at the default address. */
        if (address == NULL || address[0] == '\0' || strcmp(address, "1") == 0)
            address = DEFAULT_ADDRESS;
    }
    if (rcgc__insp_parse_address(address, &cfg->addr) != 0)
        return RCGC_EINVAL;
    cfg->loopback = (ntohl(cfg->addr.sin_addr.s_addr) >> 24) == 127;
    if (!cfg->loopback && !opts->allow_remote)
        return RCGC_EINVAL;

    if (opts->allow_control < 0) {
        if (control_from_env(&cfg->allow_control) != 0)
            return RCGC_EINVAL;
    } else {
        cfg->allow_control = opts->allow_control > 0;
    }
    cfg->max_connections =
        opts->max_connections ? opts->max_connections : DEFAULT_MAX_CONNECTIONS;
    cfg->idle_timeout_s = opts->idle_timeout_s ? opts->idle_timeout_s : DEFAULT_IDLE_TIMEOUT_S;
    cfg->walk_timeout_ms =
        opts->walk_timeout_ms ? opts->walk_timeout_ms : DEFAULT_WALK_TIMEOUT_MS;

    const char *token = opts->token;
    if (token == NULL)
        token = getenv("RCGC_INSPECT_TOKEN");
    if (token != NULL && token[0] != '\0') {
        cfg->token_len = strlen(token);
        cfg->token = malloc(cfg->token_len + 1);
        if (cfg->token == NULL)
            return RCGC_ENOMEM;
        memcpy(cfg->token, token, cfg->token_len + 1);
    }
    int rc = web_dir_from_env(&cfg->web_dir);
    if (rc != 0) {
        free(cfg->token);
        cfg->token = NULL;
    }
    return rc;
}
