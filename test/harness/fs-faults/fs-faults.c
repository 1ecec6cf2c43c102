// A preload library that makes fsync and fdatasync fail with EIO, as a failing disk does, on the files a
// test names while it asks for it: the real calls run otherwise. No device-mapper target (dm-error,
// dm-flakey) can be set up on the machines the tests run on, and a failed sync must reach SQLite's and
// libuv's real code paths, so the failure is injected at the C library boundary.
//
// Control, through the directory in FC_FS_FAULTS:
//   <dir>/fsync        exists: a sync of a file whose path contains the text it holds fails with EIO
//   <dir>/fsync.hits   one line per failed sync, with the path, so a test knows the fault was hit
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fails(int fd) {
  const char *dir = getenv("FC_FS_FAULTS");
  if (dir == NULL) return 0;
  char ctl[PATH_MAX];
  snprintf(ctl, sizeof ctl, "%s/fsync", dir);
  int cfd = open(ctl, O_RDONLY | O_CLOEXEC);
  if (cfd < 0) return 0;
  char pattern[PATH_MAX];
  ssize_t n = read(cfd, pattern, sizeof pattern - 1);
  close(cfd);
  if (n < 0) n = 0;
  pattern[n] = '\0';
  pattern[strcspn(pattern, "\n")] = '\0';
  char link[64], target[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t m = readlink(link, target, sizeof target - 1);
  if (m < 0) return 0;
  target[m] = '\0';
  if (strstr(target, pattern) == NULL) return 0;
  char hits[PATH_MAX];
  snprintf(hits, sizeof hits, "%s/fsync.hits", dir);
  int hfd = open(hits, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (hfd >= 0) {
    target[m] = '\n';
    ssize_t ignored = write(hfd, target, (size_t)m + 1);
    (void)ignored;
    close(hfd);
  }
  return 1;
}

/** The real call `name` (looked up once into `real`), unless the sync of `fd` is to fail. */
static int sync_or_fail(int fd, const char *name, int (**real)(int)) {
  if (fails(fd)) {
    errno = EIO;
    return -1;
  }
  if (*real == NULL) *real = (int (*)(int))dlsym(RTLD_NEXT, name);
  return (*real)(fd);
}

int fsync(int fd) {
  static int (*real)(int);
  return sync_or_fail(fd, "fsync", &real);
}

int fdatasync(int fd) {
  static int (*real)(int);
  return sync_or_fail(fd, "fdatasync", &real);
}
