/*
 * volume-server: the example program of unikernel.ops' local flow.
 *
 * Serves the files of the volume mounted at /site over HTTP (port 8080), and reports on the
 * console every volume that appears or disappears in /proc/mounts - which is how a Nanos guest
 * notices a hot-plugged volume. For each new mount it lists the files at its top level.
 * Built by playbooks/main.yml with the system compiler (static, so no libraries are needed).
 */
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SITE "/site"

static char last_mounts[4096];

static void report_mounts(void)
{
    char now[4096] = "";
    FILE *f = fopen("/proc/mounts", "r");
    if (!f)
        return;
    size_t n = fread(now, 1, sizeof now - 1, f);
    fclose(f);
    now[n] = 0;
    if (strcmp(now, last_mounts) == 0)
        return;
    char copy[4096];
    strcpy(copy, now);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        if (strstr(last_mounts, line))
            continue;
        char dev[256], dir[256];
        if (sscanf(line, "%255s %255s", dev, dir) != 2)
            continue;
        printf("volume-server: mounted %s at %s:", dev, dir);
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (e->d_name[0] != '.')
                printf(" %s", e->d_name);
        if (d)
            closedir(d);
        printf("\n");
    }
    strcpy(last_mounts, now);
    fflush(stdout);
}

static void serve(int client)
{
    char req[1024] = "", path[512], file[600];
    ssize_t n = read(client, req, sizeof req - 1);
    if (n <= 0 || sscanf(req, "GET %511s", path) != 1 || strstr(path, "..")) {
        dprintf(client, "HTTP/1.0 400 Bad Request\r\n\r\n");
        return;
    }
    snprintf(file, sizeof file, SITE "%s", strcmp(path, "/") ? path : "/index.html");
    FILE *f = fopen(file, "r");
    if (!f) {
        dprintf(client, "HTTP/1.0 404 Not Found\r\n\r\nno %s on the volume\n", path);
        return;
    }
    dprintf(client, "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n");
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        if (write(client, buf, got) < 0)
            break;
    fclose(f);
}

int main(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(8080)};
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) || listen(s, 8)) {
        perror("volume-server: listen");
        return 1;
    }
    printf("volume-server: serving " SITE " on port 8080\n");
    report_mounts();
    for (;;) {
        struct pollfd p = {.fd = s, .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            int c = accept(s, NULL, NULL);
            if (c >= 0) {
                serve(c);
                close(c);
            }
        }
        report_mounts();
    }
}
