/*
 * json.h -- strict JSON for every parser of outside bytes in Milvuso, and
 * the one number grammar.
 *
 * cJSON does the structural parsing; this layer closes the places where
 * cJSON is more lenient than RFC 8259 or where what it decodes hides what
 * was sent (json.c explains each gate).  What comes out of
 * mv_json_load_object is an object whose every number followed the JSON
 * grammar, whose every string was well-formed UTF-8 without raw control
 * characters or "\u0000", with no key given twice, at most MV_JSON_MAX_DEPTH
 * deep and at most MV_JSON_MAX_VALUES values.
 *
 * Numbers read from text formats (CSV/TSV ratings, weights) follow the same
 * grammar: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?, so "4.5"
 * means the same in a JSON body and in a ratings file, and ".5", "+1", "01"
 * are refused in both.
 */
#ifndef MV_JSON_H
#define MV_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "mv_common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cJSON;

#define MV_JSON_MAX_DEPTH    32
#define MV_JSON_MAX_VALUES   (4 * MV_DIM_MAX)
#define MV_NUMBER_TEXT_MAX   63     /* longest number text mv_number_parse
                                       converts */

/*
 * Parses buf[0..len) (no terminator needed) as one JSON object with only
 * JSON whitespace around it.  Returns the cJSON tree (the caller frees it
 * with cJSON_Delete), or NULL with the reason in err ("empty body",
 * "malformed number at byte 12", "key \"x\" given twice", ...).
 */
struct cJSON *mv_json_load_object(const char *buf, size_t len,
    mv_err_t *err);

/*
 * Member name of object o, or NULL when it is absent or null (a null
 * member means "not given", as serde's Option and most encoders mean it).
 */
const struct cJSON *mv_json_field(const struct cJSON *o, const char *name);

/*
 * Length of the JSON number that starts at p[0..len), or 0 when p does not
 * start with one, or when it runs on into characters that could continue a
 * number ("1.", "01", "1e", "1.5.2").
 */
size_t mv_json_number_len(const char *p, size_t len);

/*
 * Converts s[0..len) -- exactly one JSON number, at most MV_NUMBER_TEXT_MAX
 * bytes -- to a double (strtod in the C locale; "1e999" gives inf).
 * Returns MV_OK, or MV_ERR when s is anything else.
 */
int mv_number_parse(const char *s, size_t len, double *out);

/*
 * Converts d to a float when it is finite and does not round to infinity
 * as a float (the cut is FLT_MAX plus half an ulp).  Returns MV_OK, or
 * MV_ERR for NaN, infinities and larger magnitudes (*f untouched).
 */
int mv_float_from_double(double d, float *f);

/*
 * Checks text kept from the outside (a tag): 1..max bytes of well-formed
 * UTF-8 without control characters (below 0x20, and 0x7f).  Returns NULL
 * when it is fine, else a static phrase saying what is wrong.
 */
const char *mv_text_problem(const char *s, size_t len, size_t max);

#ifdef __cplusplus
}
#endif

#endif /* MV_JSON_H */
