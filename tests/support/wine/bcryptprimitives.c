/* Wine 8 (Debian 12's wine64) lacks bcryptprimitives.dll's ProcessPrng, which Rust's std
   imports on Windows for random numbers. This stand-in, placed beside the .exe under test,
   answers it with RtlGenRandom (advapi32's SystemFunction036). Test-only: real Windows 10+
   ships the export. */
#include <windows.h>
#define RtlGenRandom SystemFunction036
BOOLEAN NTAPI RtlGenRandom(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    return RtlGenRandom(data, (ULONG)length);
}
