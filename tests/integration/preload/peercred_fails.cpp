// Preloaded into flowgated by the integration tests (LD_PRELOAD) to make the one call
// that cannot fail on a healthy kernel fail: getsockopt(SO_PEERCRED) answers -1
// (ENOPROTOOPT) while the file named by FLOWGATE_TEST_PEERCRED_FAILS exists, and is the
// real call otherwise. Only the test that sets the variable is affected.
#include <cerrno>
#include <cstdlib>
#include <dlfcn.h>
#include <sys/socket.h>
#include <unistd.h>

extern "C" int getsockopt(int fd, int level, int name, void* value, socklen_t* size) {
    using Real = int (*)(int, int, int, void*, socklen_t*);
    static Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "getsockopt"));
    const char* flag = std::getenv("FLOWGATE_TEST_PEERCRED_FAILS");
    if (level == SOL_SOCKET && name == SO_PEERCRED && flag != nullptr &&
        ::access(flag, F_OK) == 0) {
        errno = ENOPROTOOPT;
        return -1;
    }
    return real(fd, level, name, value, size);
}
