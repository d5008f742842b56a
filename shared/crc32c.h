/*
 * crc32c.h -- CRC-32C (Castagnoli), the checksum of every snapshot section and
 * of action-log records.  Uses the SSE4.2 crc32 instruction when the CPU has
 * it (chosen at run time), a table-driven portable version otherwise; both
 * give identical results.
 */
#ifndef MV_CRC32C_H
#define MV_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Extends crc over len bytes of buf.  Start with crc = 0; chaining calls
 * over consecutive pieces equals one call over the whole.  The standard check
 * value holds: mv_crc32c(0, "123456789", 9) == 0xE3069283.
 */
uint32_t mv_crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable implementation, exposed so tests can compare both paths. */
uint32_t mv_crc32c_portable(uint32_t crc, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* MV_CRC32C_H */
