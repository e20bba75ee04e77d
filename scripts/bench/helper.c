/* Timing helper for scripts/bench.sh: precise fork/exec/wait loops and probes that a shell
 * cannot time well. Compiled once per bench run (gcc -O2). Every mode prints one line of
 * space-separated numbers (nanoseconds, KiB or counts) that bench.sh parses.
 *
 *   startexit N LABEL CMD... [:: LABEL CMD...]...
 *       runs each command N times, interleaved round by round, stdout/stderr to /dev/null;
 *       prints per label: "LABEL median_ns p10_ns p90_ns failures"
 *   exitlat N DIR CMD...
 *       CMD must end by running "helper stamp FILE" (FILE = $BENCH_STAMP); per run: time from
 *       the stamp (child about to exit) to DIR/exitcode appearing (inotify) and to the
 *       wrapper's own exit; DIR "-" measures only the latter.
 *       prints "file_p50 file_p99 exit_p50 exit_p99 failures"
 *   sigreact N MODE DIR CMD...
 *       CMD must end by running "helper readysleep FILE" (FILE = $BENCH_READY); per run: once
 *       the child is ready, after a random 0-25 ms, MODE "file" renames "15" into DIR/signal,
 *       MODE "kill" sends SIGTERM to the wrapper; time until the wrapper has exited.
 *       prints "p50 p99 max failures"
 *   watch INTERVAL_MS OUT CMD...
 *       runs CMD (stdio inherited), samples /proc/PID every INTERVAL_MS until it exits (exit
 *       checked every 0.5 ms); writes
 *       to OUT "wall_ns vmhwm_kb cpu_ns ru_maxrss_kb exit_status" where vmhwm and cpu_ns (sum of
 *       every thread's schedstat run time) are the last sample taken before the exit.
 *   iocount OUT CMD...
 *       runs CMD once (stdout/stderr to /dev/null); once it has exited, before reaping it, reads
 *       its /proc/PID/io; writes to OUT "wall_ns wchar syscw exit_status".
 *   orphans N TIMEOUT_MS OUT
 *       spawns N orphans (double fork, the grandchild exits at once), then scans /proc every
 *       0.5 ms until no process but PID 1 and itself is left; writes to OUT
 *       "spawned clear_ns max_left timed_out" (clear_ns: from the last spawn to none left).
 *   stamp FILE         writes CLOCK_MONOTONIC ns to FILE, exits 0
 *   readysleep FILE    creates FILE, waits for a signal
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ns(long long ns) {
    struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

/* Percentile q (0..100) of v[0..n), nearest rank (sorts v); -1 when empty. */
static long long pct(long long *v, int n, int q) {
    if (n <= 0) return -1;
    qsort(v, n, sizeof *v, cmp_ll);
    int i = (int)(((long long)q * n + 99) / 100) - 1;
    if (i < 0) i = 0;
    if (i >= n) i = n - 1;
    return v[i];
}

static void die(const char *what) {
    fprintf(stderr, "helper: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* fork + exec argv, stdout/stderr optionally to /dev/null; returns the pid. */
static pid_t spawn(char **argv, int quiet) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        if (quiet) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                if (fd > 2) close(fd);
            }
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int wait_status(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) die("waitpid");
    }
    return st;
}

static int mode_startexit(int argc, char **argv) {
    int n = atoi(argv[0]);
    char **cmds[32];
    char *labels[32];
    int k = 0;
    for (int i = 1; i < argc && k < 32;) {
        labels[k] = argv[i++];
        cmds[k] = &argv[i];
        while (i < argc && strcmp(argv[i], "::") != 0) i++;
        if (i < argc) argv[i++] = NULL;
        k++;
    }
    long long *t[32];
    int fails[32] = {0};
    for (int c = 0; c < k; c++) t[c] = calloc(n, sizeof(long long));
    for (int r = 0; r < n; r++) {
        for (int c = 0; c < k; c++) {
            long long t0 = now_ns();
            pid_t pid = spawn(cmds[c], 1);
            int st = wait_status(pid);
            t[c][r] = now_ns() - t0;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fails[c]++;
        }
    }
    for (int c = 0; c < k; c++) {
        long long p10 = pct(t[c], n, 10), p90 = pct(t[c], n, 90), p50 = pct(t[c], n, 50);
        printf("%s %lld %lld %lld %d\n", labels[c], p50, p10, p90, fails[c]);
    }
    return 0;
}

static long long read_stamp(const char *path) {
    FILE *f = fopen(path, "r");
    long long v = -1;
    if (!f) return -1;
    if (fscanf(f, "%lld", &v) != 1) v = -1;
    fclose(f);
    return v;
}

static int mode_exitlat(int argc, char **argv) {
    int n = atoi(argv[0]);
    const char *dir = argv[1];
    char **cmd = &argv[2];
    (void)argc;
    const char *stamp = getenv("BENCH_STAMP");
    if (!stamp) {
        fprintf(stderr, "helper: BENCH_STAMP not set\n");
        return 2;
    }
    int watchfile = strcmp(dir, "-") != 0;
    char exitcode[4096];
    snprintf(exitcode, sizeof exitcode, "%s/exitcode", dir);
    long long *tf = calloc(n, sizeof(long long)), *te = calloc(n, sizeof(long long));
    int nf = 0, ne = 0, fails = 0;
    for (int r = 0; r < n; r++) {
        unlink(stamp);
        int in = -1;
        if (watchfile) {
            unlink(exitcode);
            in = inotify_init1(IN_CLOEXEC);
            if (in < 0) die("inotify_init1");
            if (inotify_add_watch(in, dir, IN_MOVED_TO | IN_CREATE) < 0) die("inotify_add_watch");
        }
        pid_t pid = spawn(cmd, 1);
        long long tfile = -1;
        if (watchfile) {
            char buf[8192] __attribute__((aligned(8)));
            while (tfile < 0) {
                ssize_t len = read(in, buf, sizeof buf);
                if (len <= 0) {
                    if (errno == EINTR) continue;
                    break;
                }
                for (char *p = buf; p < buf + len;) {
                    struct inotify_event *ev = (struct inotify_event *)p;
                    if (ev->len && strcmp(ev->name, "exitcode") == 0 && tfile < 0) tfile = now_ns();
                    p += sizeof *ev + ev->len;
                }
            }
            close(in);
        }
        wait_status(pid);
        long long texit = now_ns();
        long long t0 = read_stamp(stamp);
        if (t0 < 0 || (watchfile && tfile < 0)) {
            fails++;
            continue;
        }
        if (watchfile) tf[nf++] = tfile - t0;
        te[ne++] = texit - t0;
    }
    long long f50 = pct(tf, nf, 50), f99 = pct(tf, nf, 99);
    long long e50 = pct(te, ne, 50), e99 = pct(te, ne, 99);
    printf("%lld %lld %lld %lld %d\n", f50, f99, e50, e99, fails);
    return 0;
}

static int mode_sigreact(int argc, char **argv) {
    int n = atoi(argv[0]);
    const char *mode = argv[1];
    const char *dir = argv[2];
    char **cmd = &argv[3];
    (void)argc;
    const char *ready = getenv("BENCH_READY");
    if (!ready) {
        fprintf(stderr, "helper: BENCH_READY not set\n");
        return 2;
    }
    int use_file = strcmp(mode, "file") == 0;
    char sig[4096], tmp[4096];
    snprintf(sig, sizeof sig, "%s/signal", dir);
    snprintf(tmp, sizeof tmp, "%s/.signal.bench", dir);
    long long *t = calloc(n, sizeof(long long));
    int m = 0, fails = 0;
    srand(12345);
    for (int r = 0; r < n; r++) {
        unlink(ready);
        unlink(sig);
        pid_t pid = spawn(cmd, 1);
        long long deadline = now_ns() + 5000000000LL;
        struct stat sb;
        while (stat(ready, &sb) != 0 && now_ns() < deadline) sleep_ns(200000);
        if (stat(ready, &sb) != 0) {
            kill(pid, SIGKILL);
            wait_status(pid);
            fails++;
            continue;
        }
        /* A random phase against the emissary's tick. */
        sleep_ns((long long)(rand() % 25000) * 1000);
        long long t0;
        if (use_file) {
            int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || write(fd, "15", 2) != 2) die("write signal file");
            close(fd);
            t0 = now_ns();
            if (rename(tmp, sig) != 0) die("rename signal file");
        } else {
            t0 = now_ns();
            kill(pid, SIGTERM);
        }
        /* Give up after 10 s: the reaction is then reported as failed. */
        long long limit = t0 + 10000000000LL;
        int st, done = 0;
        while (!done) {
            pid_t w = waitpid(pid, &st, WNOHANG);
            if (w == pid) {
                done = 1;
                break;
            }
            if (now_ns() > limit) break;
            sleep_ns(50000);
        }
        if (!done) {
            kill(pid, SIGKILL);
            wait_status(pid);
            fails++;
            continue;
        }
        t[m++] = now_ns() - t0;
    }
    long long mx = m ? pct(t, m, 100) : -1;
    long long p50 = pct(t, m, 50), p99 = pct(t, m, 99);
    printf("%lld %lld %lld %d\n", p50, p99, mx, fails);
    unlink(tmp);
    return 0;
}

/* Sum of every thread's run time (ns) from /proc/PID/task/TID/schedstat; -1 if gone. */
static long long proc_cpu_ns(pid_t pid) {
    char path[256];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    long long sum = 0;
    int any = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char p2[512];
        snprintf(p2, sizeof p2, "/proc/%d/task/%s/schedstat", pid, e->d_name);
        FILE *f = fopen(p2, "r");
        if (!f) continue;
        long long run;
        if (fscanf(f, "%lld", &run) == 1) {
            sum += run;
            any = 1;
        }
        fclose(f);
    }
    closedir(d);
    return any ? sum : -1;
}

static long long proc_hwm_kb(pid_t pid) {
    char path[256], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long long v = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            v = atoll(line + 6);
            break;
        }
    }
    fclose(f);
    return v;
}

static int mode_watch(int argc, char **argv) {
    int interval = atoi(argv[0]);
    const char *out = argv[1];
    char **cmd = &argv[2];
    (void)argc;
    long long t0 = now_ns();
    pid_t pid = spawn(cmd, 0);
    long long hwm = -1, cpu = -1, next = 0;
    int st;
    struct rusage ru;
    for (;;) {
        if (now_ns() >= next) {
            long long h = proc_hwm_kb(pid), c = proc_cpu_ns(pid);
            if (h > 0) hwm = h;
            if (c >= 0) cpu = c;
            next = now_ns() + (long long)interval * 1000000LL;
        }
        sleep_ns(500000);
        pid_t w = wait4(pid, &st, WNOHANG, &ru);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) die("wait4");
    }
    long long wall = now_ns() - t0;
    FILE *f = fopen(out, "w");
    if (!f) die("open watch output");
    fprintf(f, "%lld %lld %lld %ld %d\n", wall, hwm, cpu, ru.ru_maxrss,
            WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    fclose(f);
    return 0;
}

static int mode_iocount(int argc, char **argv) {
    const char *out = argv[0];
    char **cmd = &argv[1];
    (void)argc;
    long long t0 = now_ns();
    pid_t pid = spawn(cmd, 1);
    siginfo_t si;
    while (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) != 0) {
        if (errno != EINTR) die("waitid");
    }
    long long wall = now_ns() - t0;
    long long wchar = -1, syscw = -1;
    char path[256], line[256];
    snprintf(path, sizeof path, "/proc/%d/io", pid);
    FILE *f = fopen(path, "r");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "wchar:", 6) == 0) wchar = atoll(line + 6);
            if (strncmp(line, "syscw:", 6) == 0) syscw = atoll(line + 6);
        }
        fclose(f);
    }
    int st = wait_status(pid);
    f = fopen(out, "w");
    if (!f) die("open iocount output");
    fprintf(f, "%lld %lld %lld %d\n", wall, wchar, syscw,
            WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    fclose(f);
    return 0;
}

/* Processes in /proc other than PID 1 and ourselves. */
static int count_others(pid_t self) {
    DIR *d = opendir("/proc");
    if (!d) die("opendir /proc");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        int p = atoi(e->d_name);
        if (p != 1 && p != self) n++;
    }
    closedir(d);
    return n;
}

static int mode_orphans(int argc, char **argv) {
    int n = atoi(argv[0]);
    long long timeout = atoll(argv[1]) * 1000000LL;
    const char *out = argv[2];
    (void)argc;
    pid_t self = getpid();
    int spawned = 0;
    for (int i = 0; i < n; i++) {
        pid_t mid = fork();
        if (mid < 0) break;
        if (mid == 0) {
            pid_t g = fork();
            if (g == 0) _exit(0); /* the orphan: dies at once */
            _exit(g < 0);
        }
        int st;
        while (waitpid(mid, &st, 0) < 0 && errno == EINTR) {
        }
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) spawned++;
    }
    long long t0 = now_ns();
    int left, maxleft = 0, timed_out = 0;
    long long clear;
    for (;;) {
        left = count_others(self);
        if (left > maxleft) maxleft = left;
        clear = now_ns() - t0;
        if (left == 0) break;
        if (clear > timeout) {
            timed_out = 1;
            break;
        }
        sleep_ns(500000);
    }
    FILE *f = fopen(out, "w");
    if (!f) die("open orphans output");
    fprintf(f, "%d %lld %d %d\n", spawned, clear, maxleft, timed_out);
    fclose(f);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: helper MODE ARGS...\n");
        return 2;
    }
    const char *m = argv[1];
    argc -= 2;
    argv += 2;
    if (strcmp(m, "stamp") == 0) {
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%lld", now_ns());
        int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, buf, len) != len) return 1;
        close(fd);
        _exit(0);
    }
    if (strcmp(m, "readysleep") == 0) {
        int fd = open(argv[0], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) return 1;
        close(fd);
        for (;;) pause();
    }
    if (strcmp(m, "startexit") == 0 && argc >= 3) return mode_startexit(argc, argv);
    if (strcmp(m, "exitlat") == 0 && argc >= 3) return mode_exitlat(argc, argv);
    if (strcmp(m, "sigreact") == 0 && argc >= 4) return mode_sigreact(argc, argv);
    if (strcmp(m, "watch") == 0 && argc >= 3) return mode_watch(argc, argv);
    if (strcmp(m, "iocount") == 0 && argc >= 2) return mode_iocount(argc, argv);
    if (strcmp(m, "orphans") == 0 && argc >= 3) return mode_orphans(argc, argv);
    fprintf(stderr, "helper: bad mode or arguments: %s\n", m);
    return 2;
}
