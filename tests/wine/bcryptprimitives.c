/*
 * A stand-in for Windows' bcryptprimitives.dll, for running Tend's Windows
 * build under Wine 8, which lacks the DLL. Rust's standard library imports one
 * function from it, ProcessPrng, to fill buffers with random bytes; this
 * implements it over RtlGenRandom (advapi32's SystemFunction036), which Wine
 * has. Test-only: real Windows ships the DLL.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    (void)instance;
    (void)reason;
    (void)reserved;
    return TRUE;
}
