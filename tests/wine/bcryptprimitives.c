/* A stand-in for Windows' bcryptprimitives.dll, for running the Windows build of corral-agent
 * under Wine 8 (Debian 12), which lacks it. Rust's standard library draws its random numbers
 * from ProcessPrng in that DLL (Windows 10 and later); this one answers from BCryptGenRandom,
 * the system RNG that Wine does provide. Used by scripts/test only, never shipped. */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x7fffffff ? 0x7fffffff : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
