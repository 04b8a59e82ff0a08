/*
 * ddbsync._speedups: the hot paths of ddbsync.decode and ddbsync.mapping in C.
 *
 * - decode_map(item) turns a DynamoDB-JSON attribute map (a dict from a stream
 *   record or an export line) into the very same Python objects as the pure-Python
 *   fast decoder in decode.py (_map): S/B/str kept as is, N as int or float, M/L
 *   recursively, BOOL/NULL, SS/NS as sorted lists.
 * - encode_map(item, member) writes the JSON bytes that serializing that decoded
 *   item (plus one more member) with decode.dumps_bytes would write, without
 *   building the Python objects.
 * - stream_change(record, pk, sk, encode) does mapping.map_record's work for a
 *   plainly valid INSERT/MODIFY record: document id, sequence number, second, and
 *   (when asked) the document's JSON.
 *
 * Each handles only the common, unambiguous input. On anything else (a number the
 * Python code must judge, BS, a subclass, a malformed value, deep nesting, a
 * REMOVE...) it "bails": it returns None and the caller does the work in Python,
 * which decides and explains. So the C code never defines behaviour, it only speeds
 * up cases whose result is known; the differential tests (tests/unit/
 * test_speedups.py) compare both on random input.
 *
 * Built against the limited C API (abi3, CPython >= 3.11): one binary per CPU
 * architecture serves every runtime from 3.11 on (this machine's 3.11 and the
 * Lambda python3.13 alike). No Python code runs while it works (it never calls
 * back into Python objects other than str/int/float/list/dict), so the GIL is
 * held throughout and nothing can mutate the input under it.
 *
 * None is returned with Py_NewRef(Py_None), never with the Py_RETURN_* macros: the 3.12 to
 * 3.13.4 headers expand that macro without taking a reference even under an
 * older limited API (CPython gh-134989), and the module would then crash a 3.11
 * interpreter at exit.
 */
#define PY_SSIZE_T_CLEAN
#define Py_LIMITED_API 0x030B0000
#include <Python.h>
#include <string.h>

/* DynamoDB allows 32 levels of nesting; deeper input goes to the Python decoder. */
#define MAX_DEPTH 64

/* Convention inside this file: a function returns a new reference, or NULL. NULL
 * with an exception set is a real error (MemoryError); NULL without one is a bail. */

static PyObject *decode_map_at(PyObject *map, int depth);
static PyObject *decode_list_at(PyObject *list, int depth);

/* The UTF-8 bytes of an exact str, or NULL (bail) if it has none (lone surrogates). */
static const char *utf8_of(PyObject *text, Py_ssize_t *size) {
    const char *s = PyUnicode_AsUTF8AndSize(text, size);
    if (s == NULL) {
        PyErr_Clear();
    }
    return s;
}

static int tag_is(const char *tag, Py_ssize_t size, const char *name) {
    Py_ssize_t i = 0;
    for (; i < size; i++) {
        if (name[i] == '\0' || name[i] != tag[i]) {
            return 0;
        }
    }
    return name[i] == '\0';
}

/* An N value's text, split up: the whole text, and its digits without the sign. */
typedef struct {
    const char *text;
    Py_ssize_t size;
    const char *body; /* text without a leading "-" */
    Py_ssize_t n;
    int negative;
    Py_ssize_t dots;
} NumberText;

/* Fills *t when the value is an exact str of ASCII digits and dots after an optional
 * "-" (any other character: bail). Returns 1 when filled, 0 to bail. */
static int scan_number(PyObject *value, NumberText *t) {
    if (!PyUnicode_CheckExact(value)) {
        return 0;
    }
    t->text = utf8_of(value, &t->size);
    if (t->text == NULL) {
        return 0;
    }
    t->body = t->text;
    t->n = t->size;
    t->negative = 0;
    if (t->n > 0 && t->body[0] == '-') {
        t->negative = 1;
        t->body++;
        t->n--;
    }
    t->dots = 0;
    for (Py_ssize_t i = 0; i < t->n; i++) {
        char c = t->body[i];
        if (c == '.') {
            t->dots++;
        } else if (c < '0' || c > '9') {
            return 0;
        }
    }
    return 1;
}

/* The value of 1 to 18 digits. */
static unsigned long long small_integer(const char *digits, Py_ssize_t n) {
    unsigned long long value = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        value = value * 10 + (unsigned long long)(digits[i] - '0');
    }
    return value;
}

/* Whether a decimal (one dot) is one that numbers.plain_decimal_as_float turns into a
 * float keeping all its digits: at most 16 characters besides the sign, digits on both
 * sides of the dot, no leading zero but "0.", no trailing zero but "x.0". */
static int float_safe_decimal(const NumberText *t) {
    const char *b = t->body;
    Py_ssize_t n = t->n;
    return t->dots == 1 && n <= 16 && b[0] != '.' && b[n - 1] != '.' &&
           !(b[n - 1] == '0' && b[n - 2] != '.') && !(b[0] == '0' && b[1] != '.');
}

/*
 * An N value, exactly as decode.py's _map/_num would decode it, for the two shapes
 * it can tell without the Decimal module: an integer of at most 18 digits
 * (optionally negative), an int; a float-safe decimal (above), a float. Anything
 * else bails.
 */
static PyObject *decode_number(PyObject *text) {
    NumberText t;
    if (!scan_number(text, &t)) {
        return NULL;
    }
    if (t.dots == 0) {
        if (t.n < 1 || t.n > 18) {
            return NULL;
        }
        long long value = (long long)small_integer(t.body, t.n);
        return PyLong_FromLongLong(t.negative ? -value : value);
    }
    if (!float_safe_decimal(&t)) {
        return NULL;
    }
    double value = PyOS_string_to_double(t.text, NULL, NULL);
    if (value == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    return PyFloat_FromDouble(value);
}

/* A sorted copy of an SS (every element an exact str) or an NS list, or NULL. */
static PyObject *decode_set(PyObject *inner, int numbers) {
    if (!PyList_CheckExact(inner)) {
        return NULL;
    }
    Py_ssize_t n = PyList_Size(inner);
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *element = PyList_GetItem(inner, i); /* borrowed */
        PyObject *value;
        if (numbers) {
            value = decode_number(element);
        } else if (PyUnicode_CheckExact(element)) {
            Py_INCREF(element);
            value = element;
        } else {
            value = NULL;
        }
        if (value == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SetItem(out, i, value); /* steals value */
    }
    if (PyList_Sort(out) < 0) {
        /* Cannot happen for str, or int and float, but never guess: bail. */
        PyErr_Clear();
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* The type tags the fast paths take; TAG_OTHER is everything else (BS, unknown tags,
 * malformed values), which they hand back. */
typedef enum { TAG_OTHER, TAG_S, TAG_B, TAG_N, TAG_M, TAG_L, TAG_SS, TAG_NS, TAG_BOOL, TAG_NULL } Tag;

/* One attribute value: a dict holding exactly one type tag. Its tag, and *inner. */
static Tag tag_of(PyObject *value, PyObject **inner) {
    if (!PyDict_CheckExact(value) || PyDict_Size(value) != 1) {
        return TAG_OTHER;
    }
    Py_ssize_t pos = 0;
    PyObject *tag_obj; /* borrowed, like *inner */
    if (!PyDict_Next(value, &pos, &tag_obj, inner) || !PyUnicode_CheckExact(tag_obj)) {
        return TAG_OTHER;
    }
    Py_ssize_t size;
    const char *tag = utf8_of(tag_obj, &size);
    if (tag == NULL) {
        return TAG_OTHER;
    }
    if (size == 1) {
        switch (tag[0]) {
        case 'S': return TAG_S;
        case 'B': return TAG_B;
        case 'N': return TAG_N;
        case 'M': return TAG_M;
        case 'L': return TAG_L;
        default: return TAG_OTHER;
        }
    }
    if (tag_is(tag, size, "SS")) {
        return TAG_SS;
    }
    if (tag_is(tag, size, "NS")) {
        return TAG_NS;
    }
    if (tag_is(tag, size, "BOOL")) {
        return TAG_BOOL;
    }
    if (tag_is(tag, size, "NULL")) {
        return TAG_NULL;
    }
    return TAG_OTHER;
}

static PyObject *decode_value_at(PyObject *value, int depth) {
    PyObject *inner;
    switch (tag_of(value, &inner)) {
    case TAG_S:
    case TAG_B:
        return PyUnicode_CheckExact(inner) ? Py_NewRef(inner) : NULL;
    case TAG_N:
        return decode_number(inner);
    case TAG_M:
        return PyDict_CheckExact(inner) ? decode_map_at(inner, depth + 1) : NULL;
    case TAG_L:
        return PyList_CheckExact(inner) ? decode_list_at(inner, depth + 1) : NULL;
    case TAG_SS:
        return decode_set(inner, 0);
    case TAG_NS:
        return decode_set(inner, 1);
    case TAG_BOOL:
        return inner == Py_True || inner == Py_False ? Py_NewRef(inner) : NULL;
    case TAG_NULL:
        return inner == Py_True ? Py_NewRef(Py_None) : NULL;
    default:
        return NULL; /* BS and anything unknown: the Python decoder */
    }
}

static PyObject *decode_map_at(PyObject *map, int depth) {
    if (depth > MAX_DEPTH) {
        return NULL;
    }
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    Py_ssize_t pos = 0;
    PyObject *name, *value; /* borrowed */
    while (PyDict_Next(map, &pos, &name, &value)) {
        if (!PyUnicode_CheckExact(name)) {
            Py_DECREF(out);
            return NULL;
        }
        PyObject *decoded = decode_value_at(value, depth);
        if (decoded == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        int failed = PyDict_SetItem(out, name, decoded);
        Py_DECREF(decoded);
        if (failed) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

static PyObject *decode_list_at(PyObject *list, int depth) {
    if (depth > MAX_DEPTH) {
        return NULL;
    }
    Py_ssize_t n = PyList_Size(list);
    PyObject *out = PyList_New(n);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *decoded = decode_value_at(PyList_GetItem(list, i), depth);
        if (decoded == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SetItem(out, i, decoded); /* steals decoded */
    }
    return out;
}

/* ---- encode_map: DynamoDB JSON straight to the document's JSON bytes ---------------
 *
 * The same shapes as decode_map, plus the numbers the Python path writes as their
 * own text (long integers, exact decimals); instead of building Python objects that
 * orjson then serializes, it writes the bytes that
 * dumps_bytes(decode_item(item) + the ddbsync member) would write, byte for byte:
 * orjson's string escapes (\" \\ \b \t \n \f \r, \u00xx for other control
 * characters, everything else as UTF-8), integers in canonical form, and a decimal
 * as its own text: a short one is a float in Python, which orjson prints with exactly
 * those digits (one below 0.001 bails, since a float that small may be printed with an
 * exponent); a longer one is an ExactDecimal, written as its text.
 */

typedef struct {
    char *data;
    Py_ssize_t size;
    Py_ssize_t capacity;
} Buffer;

static int buffer_reserve(Buffer *b, Py_ssize_t extra) {
    if (b->size + extra <= b->capacity) {
        return 0;
    }
    Py_ssize_t capacity = b->capacity ? b->capacity : 4096;
    while (capacity < b->size + extra) {
        capacity *= 2;
    }
    char *data = PyMem_Realloc(b->data, (size_t)capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->capacity = capacity;
    return 0;
}

static int buffer_put(Buffer *b, const char *bytes, Py_ssize_t n) {
    if (buffer_reserve(b, n) < 0) {
        return -1;
    }
    memcpy(b->data + b->size, bytes, (size_t)n);
    b->size += n;
    return 0;
}

static int buffer_putc(Buffer *b, char c) {
    if (buffer_reserve(b, 1) < 0) {
        return -1;
    }
    b->data[b->size++] = c;
    return 0;
}

/* Status of the writers below: 0 written, -1 real error (exception set), 1 bail. */
#define WRITTEN 0
#define FAILED (-1)
#define BAIL 1

static int write_string(Buffer *b, PyObject *text) {
    static const char hex[] = "0123456789abcdef";
    Py_ssize_t n;
    const char *s = utf8_of(text, &n);
    if (s == NULL) {
        return BAIL; /* lone surrogates: the Python path reports it */
    }
    /* Worst case: every byte becomes \u00xx. */
    if (buffer_reserve(b, 6 * n + 2) < 0) {
        return FAILED;
    }
    char *out = b->data + b->size;
    *out++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\t': *out++ = 't'; break;
        case '\n': *out++ = 'n'; break;
        case '\f': *out++ = 'f'; break;
        case '\r': *out++ = 'r'; break;
        default:
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 0xf];
        }
    }
    *out++ = '"';
    b->size = out - b->data;
    return WRITTEN;
}

/* An integer in canonical form (no leading zeros, no "-0"), as orjson writes an int. */
static int write_integer(Buffer *b, int negative, unsigned long long value) {
    char digits[24];
    char *end = digits + sizeof digits;
    char *p = end;
    do {
        *--p = (char)('0' + value % 10);
        value /= 10;
    } while (value != 0);
    if (negative) {
        *--p = '-';
    }
    return buffer_put(b, p, end - p) < 0 ? FAILED : WRITTEN;
}

/* An N value: the same shapes as decode_number, written as orjson writes the result. */
static int write_number(Buffer *b, PyObject *text) {
    NumberText t;
    if (!scan_number(text, &t)) {
        return BAIL;
    }
    const char *body = t.body;
    Py_ssize_t n = t.n;
    if (t.dots == 0) {
        if (n < 1) {
            return BAIL;
        }
        if (n <= 18) {
            unsigned long long value = small_integer(body, n);
            return write_integer(b, t.negative && value != 0, value);
        }
        /* A longer integer (a BigInt in Python) is written digit for digit, as is: only
         * without leading zeros and within DynamoDB's range (below 1E+126). */
        if (n > 126 || body[0] == '0') {
            return BAIL;
        }
        return buffer_put(b, t.text, t.size) < 0 ? FAILED : WRITTEN;
    }
    /* A decimal: JSON's grammar (one dot, digits on both sides, no leading zero but "0."). */
    if (t.dots != 1 || body[0] == '.' || body[n - 1] == '.' || (body[0] == '0' && body[1] != '.')) {
        return BAIL;
    }
    if (float_safe_decimal(&t)) {
        /* A float in Python, which orjson prints with these very digits, unless it is
         * below 0.001 (maybe with an exponent then). */
        if (n >= 5 && memcmp(body, "0.000", 5) == 0) {
            return BAIL;
        }
        return buffer_put(b, t.text, t.size) < 0 ? FAILED : WRITTEN;
    }
    /* Otherwise an ExactDecimal, written as its text, if within DynamoDB's range
     * (decode_checked rejects the rest: let it say so). */
    if (body[0] != '0') {
        Py_ssize_t integer_digits = 0;
        while (body[integer_digits] != '.') {
            integer_digits++;
        }
        if (integer_digits > 126) {
            return BAIL;
        }
    } else {
        Py_ssize_t zeros = 0; /* after "0." */
        while (2 + zeros < n && body[2 + zeros] == '0') {
            zeros++;
        }
        if (2 + zeros < n && zeros > 129) {
            return BAIL; /* below 1E-130 (and not zero) */
        }
    }
    return buffer_put(b, t.text, t.size) < 0 ? FAILED : WRITTEN;
}

static int write_map(Buffer *b, PyObject *map, int depth, const char *suffix, Py_ssize_t suffix_size);
static int write_value(Buffer *b, PyObject *value, int depth);

/* SS/NS: sorted like decode_set (numbers by value), written one by one. */
static int write_set(Buffer *b, PyObject *inner, int numbers) {
    PyObject *sorted = decode_set(inner, numbers);
    if (sorted == NULL) {
        return PyErr_Occurred() ? FAILED : BAIL;
    }
    Py_ssize_t n = PyList_Size(sorted);
    int status = buffer_putc(b, '[') < 0 ? FAILED : WRITTEN;
    for (Py_ssize_t i = 0; i < n && status == WRITTEN; i++) {
        if (i > 0 && buffer_putc(b, ',') < 0) {
            status = FAILED;
            break;
        }
        PyObject *element = PyList_GetItem(sorted, i); /* borrowed */
        if (!numbers) {
            status = write_string(b, element);
        } else if (PyLong_CheckExact(element)) {
            long long value = PyLong_AsLongLong(element); /* at most 18 digits: fits */
            status = value < 0 ? write_integer(b, 1, (unsigned long long)(-value))
                               : write_integer(b, 0, (unsigned long long)value);
        } else {
            /* A float from a plain decimal: its text is needed, which the sort lost.
             * Rare (NS of decimals): let the Python path write it. */
            status = BAIL;
        }
    }
    Py_DECREF(sorted);
    if (status == WRITTEN && buffer_putc(b, ']') < 0) {
        status = FAILED;
    }
    return status;
}

static int write_list(Buffer *b, PyObject *list, int depth) {
    if (depth > MAX_DEPTH) {
        return BAIL;
    }
    Py_ssize_t n = PyList_Size(list);
    if (buffer_putc(b, '[') < 0) {
        return FAILED;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i > 0 && buffer_putc(b, ',') < 0) {
            return FAILED;
        }
        int status = write_value(b, PyList_GetItem(list, i), depth);
        if (status != WRITTEN) {
            return status;
        }
    }
    return buffer_putc(b, ']') < 0 ? FAILED : WRITTEN;
}

static int write_literal(Buffer *b, const char *literal) {
    return buffer_put(b, literal, (Py_ssize_t)strlen(literal)) < 0 ? FAILED : WRITTEN;
}

static int write_value(Buffer *b, PyObject *value, int depth) {
    PyObject *inner;
    switch (tag_of(value, &inner)) {
    case TAG_S:
    case TAG_B:
        return PyUnicode_CheckExact(inner) ? write_string(b, inner) : BAIL;
    case TAG_N:
        return write_number(b, inner);
    case TAG_M:
        return PyDict_CheckExact(inner) ? write_map(b, inner, depth + 1, NULL, 0) : BAIL;
    case TAG_L:
        return PyList_CheckExact(inner) ? write_list(b, inner, depth + 1) : BAIL;
    case TAG_SS:
        return write_set(b, inner, 0);
    case TAG_NS:
        return write_set(b, inner, 1);
    case TAG_BOOL:
        return inner == Py_True ? write_literal(b, "true") : inner == Py_False ? write_literal(b, "false") : BAIL;
    case TAG_NULL:
        return inner == Py_True ? write_literal(b, "null") : BAIL;
    default:
        return BAIL;
    }
}

/* A map as a JSON object; suffix (already JSON, e.g. "\"_ddbsync\":{...}") is added as
 * its last member. */
static int write_map(Buffer *b, PyObject *map, int depth, const char *suffix, Py_ssize_t suffix_size) {
    if (depth > MAX_DEPTH) {
        return BAIL;
    }
    if (buffer_putc(b, '{') < 0) {
        return FAILED;
    }
    Py_ssize_t pos = 0;
    PyObject *name, *value; /* borrowed */
    int first = 1;
    while (PyDict_Next(map, &pos, &name, &value)) {
        if (!PyUnicode_CheckExact(name)) {
            return BAIL;
        }
        if (!first && buffer_putc(b, ',') < 0) {
            return FAILED;
        }
        first = 0;
        int status = write_string(b, name);
        if (status == WRITTEN) {
            status = buffer_putc(b, ':') < 0 ? FAILED : WRITTEN;
        }
        if (status == WRITTEN) {
            status = write_value(b, value, depth);
        }
        if (status != WRITTEN) {
            return status;
        }
    }
    if (suffix_size > 0) {
        if (!first && buffer_putc(b, ',') < 0) {
            return FAILED;
        }
        if (buffer_put(b, suffix, suffix_size) < 0) {
            return FAILED;
        }
    }
    return buffer_putc(b, '}') < 0 ? FAILED : WRITTEN;
}

static PyObject *encode_map(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2 || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "encode_map(item: dict, suffix: bytes)");
        return NULL;
    }
    PyObject *item = args[0];
    if (!PyDict_CheckExact(item)) {
        return Py_NewRef(Py_None);
    }
    char *suffix;
    Py_ssize_t suffix_size;
    if (PyBytes_AsStringAndSize(args[1], &suffix, &suffix_size) < 0) {
        return NULL;
    }
    Buffer b = {NULL, 0, 0};
    int status = write_map(&b, item, 0, suffix, suffix_size);
    PyObject *out = NULL;
    if (status == WRITTEN) {
        out = PyBytes_FromStringAndSize(b.data, b.size);
    } else if (status == BAIL) {
        out = Py_NewRef(Py_None);
    }
    PyMem_Free(b.data);
    return out;
}

/* ---- stream_change: mapping.map_record (and the document) for the common record ----
 *
 * For an INSERT or MODIFY record whose envelope is plainly valid, returns
 * (doc_id, sequence_number, created_second, source) exactly as map_record,
 * docid.document_id and materialize(serialize=True) compute them; bails (None) on
 * anything else: REMOVE, a missing or odd field, a key that is not S, B or a plain
 * integer N, an id over 512 bytes (hashed by Python), a time out of the usual range.
 * The Python code then maps the record and, for bad input, says what is wrong.
 */

#define MAX_ID_BYTES 512
#define MAX_CREATED_SECONDS (1LL << 40)

/* Appends one key attribute's id text (docid.key_part) to the buffer, or bails. */
static int write_key_part(Buffer *b, PyObject *value) {
    PyObject *inner;
    Tag tag = value == NULL ? TAG_OTHER : tag_of(value, &inner);
    if (tag == TAG_N) {
        /* canonical_number of an integer is its int(): no leading zeros, no "-0". */
        NumberText t;
        if (!scan_number(inner, &t) || t.dots != 0 || t.n < 1 || t.n > 18) {
            return BAIL;
        }
        unsigned long long v = small_integer(t.body, t.n);
        return write_integer(b, t.negative && v != 0, v);
    }
    if ((tag != TAG_S && tag != TAG_B) || !PyUnicode_CheckExact(inner)) {
        return BAIL;
    }
    Py_ssize_t n;
    const char *s = utf8_of(inner, &n);
    if (s == NULL) {
        return BAIL;
    }
    /* Escape "\\" and "|" so that "a|b" + "c" and "a" + "b|c" differ. */
    if (buffer_reserve(b, 2 * n) < 0) {
        return FAILED;
    }
    char *out = b->data + b->size;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] == '\\' || s[i] == '|') {
            *out++ = '\\';
        }
        *out++ = s[i];
    }
    b->size = out - b->data;
    return WRITTEN;
}

/* A dict's item by a str key, borrowed; NULL (no exception) when absent. */
static PyObject *item_of(PyObject *dict, const char *key) {
    PyObject *value = PyDict_GetItemString(dict, key); /* borrowed, suppresses errors */
    return value;
}

static int stream_created_seconds(PyObject *created, long long *seconds) {
    if (created == NULL) {
        return BAIL;
    }
    if (PyLong_CheckExact(created)) {
        int overflow = 0;
        long long value = PyLong_AsLongLongAndOverflow(created, &overflow);
        if (overflow || (value == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return BAIL;
        }
        if (value < 0 || value >= MAX_CREATED_SECONDS) {
            return BAIL;
        }
        *seconds = value;
        return WRITTEN;
    }
    if (PyFloat_CheckExact(created)) {
        double value = PyFloat_AsDouble(created);
        if (!(value >= 0.0 && value < (double)MAX_CREATED_SECONDS)) { /* NaN fails too */
            return BAIL;
        }
        *seconds = (long long)value; /* int() of a non-negative float */
        return WRITTEN;
    }
    return BAIL;
}

/* The "_ddbsync" member of a stream document, as mapping._STREAM_META writes it:
 * "_ddbsync":{"seq":"<sequence number zero-padded to 40 digits>","ts":<second>,"source":"stream"} */
static int write_stream_meta(Buffer *b, const char *seq, Py_ssize_t seq_size, long long second) {
    static const char head[] = "\"_ddbsync\":{\"seq\":\"";
    static const char mid[] = "\",\"ts\":";
    static const char tail[] = ",\"source\":\"stream\"}";
    if (buffer_put(b, head, (Py_ssize_t)sizeof head - 1) < 0) {
        return FAILED;
    }
    for (Py_ssize_t i = seq_size; i < 40; i++) {
        if (buffer_putc(b, '0') < 0) {
            return FAILED;
        }
    }
    if (buffer_put(b, seq, seq_size) < 0 || buffer_put(b, mid, (Py_ssize_t)sizeof mid - 1) < 0) {
        return FAILED;
    }
    if (write_integer(b, 0, (unsigned long long)second) != WRITTEN) {
        return FAILED;
    }
    return buffer_put(b, tail, (Py_ssize_t)sizeof tail - 1) < 0 ? FAILED : WRITTEN;
}

static PyObject *stream_change(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 4 || !PyUnicode_CheckExact(args[1]) ||
        (args[2] != Py_None && !PyUnicode_CheckExact(args[2]))) {
        PyErr_SetString(PyExc_TypeError,
                        "stream_change(record: dict, partition_key: str, sort_key: str | None, encode: bool)");
        return NULL;
    }
    int encode = PyObject_IsTrue(args[3]);
    if (encode < 0) {
        return NULL;
    }
    PyObject *record = args[0];
    if (!PyDict_CheckExact(record)) {
        return Py_NewRef(Py_None);
    }
    PyObject *ddb = item_of(record, "dynamodb");
    PyObject *name = item_of(record, "eventName");
    if (ddb == NULL || !PyDict_CheckExact(ddb) || name == NULL || !PyUnicode_CheckExact(name)) {
        return Py_NewRef(Py_None);
    }
    Py_ssize_t name_size;
    const char *event = utf8_of(name, &name_size);
    if (event == NULL || !(tag_is(event, name_size, "INSERT") || tag_is(event, name_size, "MODIFY"))) {
        return Py_NewRef(Py_None);
    }
    PyObject *image = item_of(ddb, "NewImage");
    PyObject *seq = item_of(ddb, "SequenceNumber");
    PyObject *keys = item_of(ddb, "Keys");
    if (image == NULL || !PyDict_CheckExact(image) || seq == NULL || !PyUnicode_CheckExact(seq) ||
        keys == NULL || !PyDict_CheckExact(keys)) {
        return Py_NewRef(Py_None);
    }
    Py_ssize_t seq_size;
    const char *digits = utf8_of(seq, &seq_size);
    if (digits == NULL || seq_size < 1) {
        return Py_NewRef(Py_None);
    }
    for (Py_ssize_t i = 0; i < seq_size; i++) {
        if (digits[i] < '0' || digits[i] > '9') {
            return Py_NewRef(Py_None);
        }
    }
    long long seconds;
    if (stream_created_seconds(item_of(ddb, "ApproximateCreationDateTime"), &seconds) != WRITTEN) {
        return Py_NewRef(Py_None);
    }
    Buffer id = {NULL, 0, 0};
    Buffer doc = {NULL, 0, 0};
    PyObject *out = NULL;
    int status = write_key_part(&id, PyDict_GetItem(keys, args[1]));
    if (status == WRITTEN && args[2] != Py_None) {
        status = buffer_putc(&id, '|') < 0 ? FAILED : WRITTEN;
        if (status == WRITTEN) {
            status = write_key_part(&id, PyDict_GetItem(keys, args[2]));
        }
    }
    if (status == WRITTEN && id.size > MAX_ID_BYTES) {
        status = BAIL; /* hashed by docid.document_id */
    }
    /* The document: written now, while the record is in the cache, unless the image
     * needs the Python path (then source is None and mapping.materialize decodes it). */
    int encoded = BAIL;
    if (status == WRITTEN && encode && item_of(image, "_ddbsync") == NULL) {
        Buffer meta = {NULL, 0, 0};
        encoded = write_stream_meta(&meta, digits, seq_size, seconds);
        if (encoded == WRITTEN) {
            encoded = write_map(&doc, image, 0, meta.data, meta.size);
        }
        PyMem_Free(meta.data);
        if (encoded == FAILED) {
            status = FAILED;
        }
    }
    if (status == WRITTEN) {
        PyObject *doc_id = PyUnicode_DecodeUTF8(id.data ? id.data : "", id.size, NULL);
        PyObject *second = doc_id ? PyLong_FromLongLong(seconds) : NULL;
        PyObject *source = NULL;
        if (second != NULL) {
            source = encoded == WRITTEN ? PyBytes_FromStringAndSize(doc.data, doc.size) : Py_NewRef(Py_None);
        }
        if (source != NULL) {
            out = PyTuple_Pack(4, doc_id, seq, second, source);
        }
        Py_XDECREF(doc_id);
        Py_XDECREF(second);
        Py_XDECREF(source);
    } else if (status == BAIL) {
        out = Py_NewRef(Py_None);
    }
    PyMem_Free(id.data);
    PyMem_Free(doc.data);
    return out;
}

static PyObject *decode_map(PyObject *module, PyObject *item) {
    (void)module;
    if (!PyDict_CheckExact(item)) {
        return Py_NewRef(Py_None);
    }
    PyObject *out = decode_map_at(item, 0);
    if (out == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        return Py_NewRef(Py_None);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"decode_map", decode_map, METH_O,
     "decode_map(item: dict) -> dict | None\n\n"
     "Decode a DynamoDB-JSON attribute map like ddbsync.decode's fast path, or return\n"
     "None when the item needs the Python decoder (unusual numbers, BS, malformed input)."},
    {"stream_change", (PyCFunction)(void (*)(void))stream_change, METH_FASTCALL,
     "stream_change(record: dict, partition_key: str, sort_key: str | None, encode: bool)\n"
     "    -> tuple[str, str, int, bytes | None] | None\n\n"
     "(doc_id, sequence_number, created_second, source) of a plainly valid INSERT/MODIFY\n"
     "record, as ddbsync.mapping.map_record and materialize(serialize=True) compute them\n"
     "(source None when not asked for or when the image needs the Python path); None for\n"
     "anything else."},
    {"encode_map", (PyCFunction)(void (*)(void))encode_map, METH_FASTCALL,
     "encode_map(item: dict, suffix: bytes) -> bytes | None\n\n"
     "The JSON bytes dumps_bytes() would write for the decoded item, with suffix (JSON of\n"
     "one more member) added last; None when the item needs the Python path."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "_speedups",
    "C speedups for ddbsync.decode (limited API; the pure-Python decoder is the reference).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "MAX_DEPTH", MAX_DEPTH) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
