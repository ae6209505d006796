/* file:// GETs and PUTs in batches, with the interpreter lock released for the whole batch.

   Why: a page-cache GET is four syscalls (open, lseek, pread, close) of ~1 us each. Run from Python, each
   releases and retakes the GIL, so two worker threads hand it over several times per op and spend more
   time waiting for it than in the kernel (bench/real_fs.py: two threads of sbench's Python loop read 0.6x a
   bare four-line os loop). Here a worker's Python makes the paths of a batch (its keys, confined by
   FileBackend.path_of) and this loop makes every syscall of every op, times each op with the clock the
   Python loop uses (CLOCK_MONOTONIC, as time.monotonic_ns), and hands back each op's record in the form
   of the engine's closed-loop sink (latency_us << bits | slot, and bytes per slot).

   Anything but the common case is left to Python, so it has one implementation: an op whose open or seek
   fails, or whose size no file has (a directory), stops the batch before it made any change (FALLBACK),
   and the caller runs it through FileBackend, which follows a symlink that stays inside the root, creates
   a missing parent, or raises the classified error. An op whose read, write or close fails after its open
   stops the batch with that errno (FAILED): the caller raises the error FileBackend would have raised, and
   its retry policy decides, so no op is made twice and no error is hidden. EINTR is retried, as Python
   does (PEP 475). Nothing is recorded for either op here. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* What a batch call returns with the index it reached. */
enum { ALL_DONE = 0, FALLBACK = 1, DEADLINE = 2, BUDGET = 3, FAILED = 4 };
/* What one op returns instead of its bytes when it is not done: hand it back, or it failed (errno set) */
#define NOT_COMMON (-1)
#define OP_FAILED (-2)

/* lseek(SEEK_END) at or above this is no file's size (file.py's _NOT_A_SIZE) */
#define NOT_A_SIZE (INT64_C(1) << 56)
#define MAX_BUCKETS 64

static inline int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The UTF-8 of paths[start:start + *n], borrowed from the str objects (which the caller's list keeps
   alive). A path that has no UTF-8 form (a name os.fsdecode gave lone surrogates, i.e. not UTF-8 on disk)
   ends the list there: *n becomes its index, and the batch hands that op back for os.open's surrogateescape. */
static const char **utf8_paths(PyObject *paths, Py_ssize_t start, Py_ssize_t *n) {
    const char **out = PyMem_Malloc(sizeof(char *) * (size_t)(*n > 0 ? *n : 1));
    if (out == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < *n; i++) {
        PyObject *item = PyList_GET_ITEM(paths, start + i);
        if (!PyUnicode_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "paths must be str");
            PyMem_Free(out);
            return NULL;
        }
        out[i] = PyUnicode_AsUTF8(item);
        if (out[i] == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
                PyMem_Free(out);
                return NULL;
            }
            PyErr_Clear();
            *n = i;
            break;
        }
    }
    return out;
}

/* Append `count` sink values to `raw` and add `bytes[b]` to bytes_by_slot[base_slot + b]; with the GIL. */
static int hand_over(PyObject *raw, const int64_t *values, Py_ssize_t count, PyObject *bytes_by_slot,
                     Py_ssize_t base_slot, const int64_t *bytes, Py_ssize_t nbuckets) {
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *v = PyLong_FromLongLong(values[i]);
        if (v == NULL || PyList_Append(raw, v) < 0) {
            Py_XDECREF(v);
            return -1;
        }
        Py_DECREF(v);
    }
    for (Py_ssize_t b = 0; b < nbuckets; b++) {
        if (bytes[b] == 0)
            continue;
        Py_ssize_t slot = base_slot + b;
        if (slot < 0 || slot >= PyList_GET_SIZE(bytes_by_slot)) {
            PyErr_SetString(PyExc_IndexError, "slot outside bytes_by_slot");
            return -1;
        }
        PyObject *old = PyList_GET_ITEM(bytes_by_slot, slot);
        PyObject *add = PyLong_FromLongLong(bytes[b]);
        if (add == NULL)
            return -1;
        PyObject *sum = PyNumber_Add(old, add);
        Py_DECREF(add);
        if (sum == NULL)
            return -1;
        PyList_SetItem(bytes_by_slot, slot, sum); /* steals sum, releases old */
    }
    return 0;
}

/* One op of a batch, made without the GIL: its bytes (and, for a GET, its size bucket in *bucket), or
   NOT_COMMON before any change, or OP_FAILED with errno set. */
typedef int64_t (*OneOp)(void *how, Py_ssize_t i, const char *path, int64_t *bucket);

static int open_retrying(const char *path, int flags, mode_t mode) {
    int fd;
    do
        fd = open(path, flags, mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

/* Close `fd` after an op: `result` unless the op or the close failed (then OP_FAILED, the first errno). */
static int64_t close_after(int fd, int64_t result) {
    int err = errno;
    if (close(fd) != 0 && result != OP_FAILED)
        return OP_FAILED;
    errno = err;
    return result;
}

/* What the two calls share: the UTF-8 of paths[start:], one sink value per op done, the bytes per bucket. */
typedef struct {
    const char **paths;
    int64_t *values;
    Py_ssize_t n;
    int cut; /* paths[start + n] has no UTF-8 form: the batch ends there, handing it back */
    int err;            /* FAILED: the op's errno */
    int64_t failed_t0;  /* FAILED: when the op began (its retry's response time starts there) */
    int64_t bytes[MAX_BUCKETS];
} Batch;

static int batch_begin(Batch *b, PyObject *paths, Py_ssize_t start) {
    Py_ssize_t total = PyList_GET_SIZE(paths);
    memset(b, 0, sizeof(*b));
    Py_ssize_t wanted = start >= 0 && start < total ? total - start : 0;
    b->n = wanted;
    b->paths = utf8_paths(paths, start, &b->n);
    if (b->paths == NULL)
        return -1;
    b->cut = b->n < wanted;
    b->values = PyMem_Malloc(sizeof(int64_t) * (size_t)(b->n > 0 ? b->n : 1));
    if (b->values == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void batch_free(Batch *b) {
    PyMem_Free(b->paths);
    PyMem_Free(b->values);
}

/* Run the batch's ops in order with the GIL released, recording each op that `one` made; hand the records
   over and return (index reached, status). */
static PyObject *batch_run(Batch *b, OneOp one, void *how, Py_ssize_t start, Py_ssize_t base_slot, int bits,
                           long long deadline, long long budget, PyObject *raw, PyObject *bytes_by_slot,
                           Py_ssize_t nbuckets) {
    Py_ssize_t i = 0;
    int status = ALL_DONE;
    Py_BEGIN_ALLOW_THREADS
    int64_t began = now_ns();
    for (; i < b->n; i++) {
        int64_t bucket = 0;
        int64_t t0 = now_ns();
        int64_t nbytes = one(how, start + i, b->paths[i], &bucket);
        if (nbytes == OP_FAILED) {
            status = FAILED;
            b->err = errno;
            b->failed_t0 = t0;
            break;
        }
        if (nbytes < 0) {
            status = FALLBACK;
            break;
        }
        int64_t t1 = now_ns();
        b->values[i] = ((t1 - t0) / 1000) << bits | (base_slot + bucket);
        b->bytes[bucket] += nbytes;
        status = t1 >= deadline ? DEADLINE : t1 - began >= budget ? BUDGET : ALL_DONE;
        if (status != ALL_DONE) {
            i++;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    if (status == ALL_DONE && b->cut)
        status = FALLBACK;
    if (hand_over(raw, b->values, i, bytes_by_slot, base_slot, b->bytes, nbuckets) < 0)
        return NULL;
    return Py_BuildValue("niiL", start + i, status, b->err, (long long)b->failed_t0);
}

typedef struct {
    int flags;
    char *buf;
    int64_t cap;
    const int64_t *bounds;
    Py_ssize_t nbounds;
    int64_t last_size, last_bucket;
} GetHow;

static int64_t get_one(void *how_, Py_ssize_t i, const char *path, int64_t *bucket) {
    GetHow *how = how_;
    int fd = open_retrying(path, how->flags, 0);
    if (fd < 0)
        return NOT_COMMON;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0 || size >= NOT_A_SIZE) {
        close(fd);
        return NOT_COMMON;
    }
    int64_t got = 0;
    while (got < size) {
        int64_t want = size - got < how->cap ? size - got : how->cap;
        ssize_t r = pread(fd, how->buf, (size_t)want, got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return close_after(fd, OP_FAILED);
        if (r == 0)
            break; /* shorter than lseek said: the file shrank, and _pread_all stops there too */
        got += r;
    }
    if (close_after(fd, got) == OP_FAILED)
        return OP_FAILED;
    if (got != how->last_size) {
        int64_t b = 0;
        while (b < how->nbounds && how->bounds[b] < got)
            b++;
        how->last_size = got;
        how->last_bucket = b;
    }
    *bucket = how->last_bucket;
    return got;
}

PyDoc_STRVAR(get_batch_doc,
"get_batch(paths, start, flags, scratch, bounds, base_slot, bits, raw, bytes_by_slot, deadline_ns, budget_ns)\n"
"-> (index, status, errno, t0_ns)\n\n"
"GET paths[start:] in order (open with `flags`, lseek(SEEK_END), pread into `scratch`, close), the GIL\n"
"released. Per op, raw.append((t1 - t0) // 1000 << bits | slot) with slot = base_slot + bisect_left(bounds,\n"
"nbytes) (`bounds` an int64 buffer), and its bytes added to bytes_by_slot[slot]. Stops after the op that\n"
"ends at or after deadline_ns (DEADLINE), after the op that ends budget_ns after the call began (BUDGET),\n"
"before an op whose open or seek fails or that is no regular file (FALLBACK, index = that op), at an op\n"
"whose read or close failed (FAILED, index = that op, with its errno and start), or at the end (ALL_DONE).");

static PyObject *get_batch(PyObject *self, PyObject *args) {
    PyObject *paths, *raw, *bytes_by_slot;
    Py_ssize_t start, base_slot;
    int flags, bits;
    Py_buffer scratch, bounds;
    long long deadline, budget;
    if (!PyArg_ParseTuple(args, "O!niw*y*niO!O!LL", &PyList_Type, &paths, &start, &flags, &scratch, &bounds,
                          &base_slot, &bits, &PyList_Type, &raw, &PyList_Type, &bytes_by_slot, &deadline,
                          &budget))
        return NULL;
    PyObject *result = NULL;
    GetHow how = {flags, scratch.buf, scratch.len, bounds.buf, bounds.len / (Py_ssize_t)sizeof(int64_t), -1, 0};
    Batch b = {0};
    if (how.nbounds + 1 > MAX_BUCKETS || how.cap < 1)
        PyErr_SetString(PyExc_ValueError, "too many size buckets or an empty scratch buffer");
    else if (batch_begin(&b, paths, start) == 0)
        result = batch_run(&b, get_one, &how, start, base_slot, bits, deadline, budget, raw, bytes_by_slot,
                           how.nbounds + 1);
    batch_free(&b);
    PyBuffer_Release(&scratch);
    PyBuffer_Release(&bounds);
    return result;
}

typedef struct {
    int flags, mode;
    const char *data;
    const int64_t *offsets;
    int64_t size;
} PutHow;

static int64_t put_one(void *how_, Py_ssize_t i, const char *path, int64_t *bucket) {
    PutHow *how = how_;
    int fd = open_retrying(path, how->flags, (mode_t)how->mode);
    if (fd < 0)
        return NOT_COMMON;
    const char *from = how->data + how->offsets[i];
    int64_t written = 0;
    while (written < how->size) {
        ssize_t w = write(fd, from + written, (size_t)(how->size - written));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO; /* a write that takes nothing would never end */
            return close_after(fd, OP_FAILED);
        }
        written += w;
    }
    return close_after(fd, how->size);
}

PyDoc_STRVAR(put_batch_doc,
"put_batch(paths, start, flags, mode, payload, offsets, size, slot, bits, raw, bytes_by_slot, deadline_ns,\n"
"          budget_ns) -> (index, status, errno, t0_ns)\n\n"
"PUT paths[start:] in order: open with `flags` and `mode`, write payload[offsets[i] : offsets[i] + size]\n"
"(offsets an int64 buffer, one per path), close; the GIL released. Per op, raw.append((t1 - t0) // 1000 <<\n"
"bits | slot) and `size` added to bytes_by_slot[slot]. Stops as get_batch does (FAILED: a write or close).");

static PyObject *put_batch(PyObject *self, PyObject *args) {
    PyObject *paths, *raw, *bytes_by_slot;
    Py_ssize_t start, slot;
    int flags, mode, bits;
    Py_buffer payload, offsets;
    long long size, deadline, budget;
    if (!PyArg_ParseTuple(args, "O!niiy*y*LniO!O!LL", &PyList_Type, &paths, &start, &flags, &mode, &payload,
                          &offsets, &size, &slot, &bits, &PyList_Type, &raw, &PyList_Type, &bytes_by_slot,
                          &deadline, &budget))
        return NULL;
    PyObject *result = NULL;
    PutHow how = {flags, mode, payload.buf, offsets.buf, size};
    Py_ssize_t total = PyList_GET_SIZE(paths);
    int valid = offsets.len / (Py_ssize_t)sizeof(int64_t) >= total && size >= 0 && size <= payload.len;
    for (Py_ssize_t i = start; valid && i >= 0 && i < total; i++)
        valid = how.offsets[i] >= 0 && how.offsets[i] <= payload.len - size; /* no overflow: size <= len */
    Batch b = {0};
    if (!valid)
        PyErr_SetString(PyExc_ValueError, "one offset per path, each with its payload slice inside the payload");
    else if (batch_begin(&b, paths, start) == 0)
        result = batch_run(&b, put_one, &how, start, slot, bits, deadline, budget, raw, bytes_by_slot, 1);
    batch_free(&b);
    PyBuffer_Release(&payload);
    PyBuffer_Release(&offsets);
    return result;
}

static PyMethodDef methods[] = {
    {"get_batch", get_batch, METH_VARARGS, get_batch_doc},
    {"put_batch", put_batch, METH_VARARGS, put_batch_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_filebatch", "file:// GETs and PUTs in batches, the GIL released (filebatch.c).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__filebatch(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "ALL_DONE", ALL_DONE) < 0 || PyModule_AddIntConstant(m, "FALLBACK", FALLBACK) < 0 ||
        PyModule_AddIntConstant(m, "FAILED", FAILED) < 0 ||
        PyModule_AddIntConstant(m, "DEADLINE", DEADLINE) < 0 || PyModule_AddIntConstant(m, "BUDGET", BUDGET) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
