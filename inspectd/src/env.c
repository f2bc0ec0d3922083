/* env.c: attaching without code changes. When librcgc-inspect is loaded (linked, or
 * LD_PRELOADed) into a process with RCGC_INSPECT set, its constructor starts the server
 * from the environment; at exit its destructor stops it. A failure prints one line and
 * the host carries on: the inspector must never be the reason a program fails. */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A description of a start error: an RCGC_E* code, or a negative errno from bind. */
static const char *why(int rc)
{
    switch (rc) {
    case RCGC_EINVAL:
        return "malformed RCGC_INSPECT address (expected host:port, loopback only), "
               "malformed RCGC_INSPECT_CONTROL, or RCGC_INSPECT_WEB_DIR not a directory";
    case RCGC_ENOMEM:
    case RCGC_EBUSY:
        return rcgc_strerror(rc);
    default:
        return strerror(-rc);
    }
}

__attribute__((constructor)) static void autostart(void)
{
    const char *where = getenv("RCGC_INSPECT");
    if (where == NULL)
        return;
    char ip[INET_ADDRSTRLEN] = "?";
    int rc = rcgc_inspect_start(NULL);
    if (rc != 0)
        fprintf(stderr, "rcgc-inspect: inspector not started on '%s': %s\n", where, why(rc));
    else
        fprintf(stderr, "rcgc-inspect: listening on http://%s:%d/\n",
                inet_ntop(AF_INET, &rcgc__insp_config()->addr.sin_addr, ip, sizeof ip),
                rcgc_inspect_port());
}

__attribute__((destructor)) static void autostop(void)
{
    rcgc_inspect_stop();
}
