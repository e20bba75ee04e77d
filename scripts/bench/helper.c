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
 *       the child is ready, after $BENCH_PHASE_MS (default 0) and a random 0-25 ms, MODE "file" renames "15" into DIR/signal,
 *       MODE "kill" sends SIGTERM to the wrapper; time until the wrapper has exited.
 *       prints "p50 p99 max failures"; appends every sample to $BENCH_SAMPLES when set, one
 *       line each: "exit_ns exitcode_ns" (the latter from the same start to DIR/exitcode
 *       appearing, checked every 50 us; -1 if it never did).
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
 *   capdesign DESIGN F1 F2
 *       another design of the capture, measured beside ours: copies stdin to F1 and F2 (fresh
 *       files) and to stdout. DESIGN "zerocopy": tee(2) the
 *       child's pipe into a spare pipe per file, splice(2) each into its file, splice the pipe
 *       itself to stdout (no byte passes through user space); "threads": read 64 KiB chunks
 *       into a ring of 16, write stdout from the reader, each file from its own thread;
 *       "floor": no stdin and no stdout at all, only F1 and F2 written with $BENCH_BYTES zero
 *       bytes in 64 KiB pwrites: what any capture must spend on its files.
 *   stamp FILE         writes CLOCK_MONOTONIC ns to FILE, exits 0
 *   readysleep FILE    creates FILE, waits for a signal
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
    const char *ph = getenv("BENCH_PHASE_MS");
    long long phase = ph ? atoll(ph) * 1000000LL : 0;
    srand(12345);
    char code[4096];
    snprintf(code, sizeof code, "%s/exitcode", dir);
    long long *tc = calloc(n, sizeof(long long));
    for (int r = 0; r < n; r++) {
        unlink(ready);
        unlink(sig);
        unlink(code);
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
        /* A random phase against the emissary's tick, after $BENCH_PHASE_MS if set. */
        sleep_ns(phase + (long long)(rand() % 25000) * 1000);
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
        long long limit = t0 + 10000000000LL, seen = -1;
        int st, done = 0;
        while (!done) {
            if (seen < 0 && stat(code, &sb) == 0) seen = now_ns();
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
        t[m] = now_ns() - t0;
        if (seen < 0 && stat(code, &sb) == 0) seen = now_ns();
        tc[m++] = seen < 0 ? -1 : seen - t0;
    }
    /* Every sample, for a caller that pools several calls. */
    const char *keep = getenv("BENCH_SAMPLES");
    FILE *kf = keep ? fopen(keep, "a") : NULL;
    if (keep && !kf) die("open BENCH_SAMPLES");
    for (int i = 0; kf && i < m; i++) fprintf(kf, "%lld %lld\n", t[i], tc[i]);
    if (kf) fclose(kf);
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

/* ---- capdesign: other designs of the capture, for the capture row ---- */

#define CAP_SLOT 65536
#define CAP_SLOTS 16

static void write_all_fd(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) die("write");
        p += w;
        n -= (size_t)w;
    }
}

static void pwrite_all(int fd, const char *p, size_t n, off_t off) {
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w <= 0) die("pwrite");
        p += w;
        n -= (size_t)w;
        off += w;
    }
}

static void splice_all(int from, int to, loff_t *off, size_t n) {
    while (n) {
        ssize_t r = splice(from, NULL, to, off, n, SPLICE_F_MOVE);
        if (r <= 0) die("splice");
        n -= (size_t)r;
    }
}

/* Each chunk: tee into both spare pipes (both empty, so each takes the whole chunk), the
 * pipe's own pages to stdout, then each spare pipe into its file. */
static void cap_zerocopy(int f1, int f2) {
    int a[2], b[2];
    if (pipe(a) || pipe(b)) die("pipe");
    loff_t o1 = 0, o2 = 0;
    for (;;) {
        ssize_t n = tee(0, a[1], 1 << 20, 0);
        if (n < 0) die("tee");
        if (n == 0) break;
        if (tee(0, b[1], (size_t)n, 0) != n) die("tee short");
        splice_all(0, 1, NULL, (size_t)n);
        splice_all(a[0], f1, &o1, (size_t)n);
        splice_all(b[0], f2, &o2, (size_t)n);
    }
}

static char cap_ring[CAP_SLOTS][CAP_SLOT];
static size_t cap_len[CAP_SLOTS];
static long cap_made, cap_done[2];
static int cap_eof, cap_fd[2];
static pthread_mutex_t cap_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cap_cv = PTHREAD_COND_INITIALIZER;

static void *cap_writer(void *arg) {
    int k = (int)(long)arg;
    off_t off = 0;
    for (;;) {
        pthread_mutex_lock(&cap_mu);
        while (cap_done[k] == cap_made && !cap_eof) pthread_cond_wait(&cap_cv, &cap_mu);
        long upto = cap_made, from = cap_done[k];
        pthread_mutex_unlock(&cap_mu);
        if (from == upto) return NULL;
        for (long i = from; i < upto; i++) {
            int s = (int)(i % CAP_SLOTS);
            pwrite_all(cap_fd[k], cap_ring[s], cap_len[s], off);
            off += (off_t)cap_len[s];
        }
        pthread_mutex_lock(&cap_mu);
        cap_done[k] = upto;
        pthread_cond_broadcast(&cap_cv);
        pthread_mutex_unlock(&cap_mu);
    }
}

static void cap_threads(int f1, int f2) {
    pthread_t t[2];
    cap_fd[0] = f1;
    cap_fd[1] = f2;
    for (long k = 0; k < 2; k++)
        if (pthread_create(&t[k], NULL, cap_writer, (void *)k)) die("pthread_create");
    for (long i = 0;; i++) {
        int s = (int)(i % CAP_SLOTS);
        pthread_mutex_lock(&cap_mu);
        while (i - cap_done[0] >= CAP_SLOTS || i - cap_done[1] >= CAP_SLOTS)
            pthread_cond_wait(&cap_cv, &cap_mu);
        pthread_mutex_unlock(&cap_mu);
        ssize_t n = read(0, cap_ring[s], CAP_SLOT);
        if (n < 0) die("read");
        if (n == 0) break;
        cap_len[s] = (size_t)n;
        write_all_fd(1, cap_ring[s], (size_t)n);
        pthread_mutex_lock(&cap_mu);
        cap_made = i + 1;
        pthread_cond_broadcast(&cap_cv);
        pthread_mutex_unlock(&cap_mu);
    }
    pthread_mutex_lock(&cap_mu);
    cap_eof = 1;
    pthread_cond_broadcast(&cap_cv);
    pthread_mutex_unlock(&cap_mu);
    for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
}

static void cap_floor(int f1, int f2) {
    const char *b = getenv("BENCH_BYTES");
    long long left = b ? atoll(b) : 0;
    static char zero[CAP_SLOT];
    off_t off = 0;
    while (left > 0) {
        size_t n = left < CAP_SLOT ? (size_t)left : CAP_SLOT;
        pwrite_all(f1, zero, n, off);
        pwrite_all(f2, zero, n, off);
        off += (off_t)n;
        left -= (long long)n;
    }
}

static int mode_capdesign(int argc, char **argv) {
    (void)argc;
    int f1 = open(argv[1], O_WRONLY | O_CREAT | O_EXCL, 0666);
    int f2 = open(argv[2], O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (f1 < 0 || f2 < 0) die("open capture file");
    if (strcmp(argv[0], "zerocopy") == 0) cap_zerocopy(f1, f2);
    else if (strcmp(argv[0], "threads") == 0) cap_threads(f1, f2);
    else if (strcmp(argv[0], "floor") == 0) cap_floor(f1, f2);
    else {
        fprintf(stderr, "helper: unknown design %s\n", argv[0]);
        return 2;
    }
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
    if (strcmp(m, "capdesign") == 0 && argc >= 3) return mode_capdesign(argc, argv);
    fprintf(stderr, "helper: bad mode or arguments: %s\n", m);
    return 2;
}
