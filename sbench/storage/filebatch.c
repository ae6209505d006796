/* file:// GETs and PUTs in batches, with the interpreter lock released for the whole batch.

   Why: a page-cache GET is four syscalls (open, lseek, pread, close) of ~1 us each. Run from Python, each
   releases and retakes the GIL, so two worker threads hand it over several times per op and spend more
   time waiting for it than in the kernel (bench/real_fs.py: two threads of sbench's Python loop read 0.6x a
   bare four-line os loop). Here a worker's Python makes the paths of a batch (its keys, confined by
   FileBackend.path_of) and this loop makes every syscall of every op, times each op with the clock the
   Python loop uses (CLOCK_MONOTONIC, as time.monotonic_ns), and hands back each op's record in the form
   of the engine's closed-loop sink (latency_us << bits | slot, and bytes per slot).

   Anything but the common case is left to Python, so it has one implementation: an op whose open, seek,
   read, write or close fails, or whose size no file has (a directory), stops the batch at that op and the
   caller runs it through FileBackend (which retries EINTR, follows a symlink that stays inside the root,
   creates a missing parent, classifies the error). Nothing is recorded for that op here. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

/* What a batch call returns with the index it reached. */
enum { ALL_DONE = 0, FALLBACK = 1, DEADLINE = 2, BUDGET = 3 };

/* lseek(SEEK_END) at or above this is no file's size (file.py's _NOT_A_SIZE) */
#define NOT_A_SIZE (INT64_C(1) << 56)
#define MAX_BUCKETS 64

static inline int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* The UTF-8 of paths[start:], borrowed from the str objects (which the caller's list keeps alive). */
static const char **utf8_paths(PyObject *paths, Py_ssize_t start, Py_ssize_t n) {
    const char **out = PyMem_Malloc(sizeof(char *) * (size_t)(n > 0 ? n : 1));
    if (out == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(paths, start + i);
        if (!PyUnicode_Check(item)) {
            PyErr_SetString(PyExc_TypeError, "paths must be str");
            PyMem_Free(out);
            return NULL;
        }
        out[i] = PyUnicode_AsUTF8(item);
        if (out[i] == NULL) {
            PyMem_Free(out);
            return NULL;
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

static int64_t read_all(int fd, char *buf, int64_t cap, int64_t size, int *failed) {
    int64_t got = 0;
    while (got < size) {
        int64_t want = size - got < cap ? size - got : cap;
        ssize_t r = pread(fd, buf, (size_t)want, got);
        if (r < 0) {
            *failed = 1;
            return got;
        }
        if (r == 0)
            break; /* shorter than lseek said: the file shrank, as _pread_all stops */
        got += r;
    }
    return got;
}

PyDoc_STRVAR(get_batch_doc,
"get_batch(paths, start, flags, scratch, bounds, base_slot, bits, raw, bytes_by_slot, deadline_ns, budget_ns)\n"
"-> (index, status)\n\n"
"GET paths[start:] in order (open with `flags`, lseek(SEEK_END), pread into `scratch`, close), the GIL\n"
"released. Per op, raw.append((t1 - t0) // 1000 << bits | slot) with slot = base_slot + bisect_left(bounds,\n"
"nbytes) (`bounds` an int64 buffer), and its bytes added to bytes_by_slot[slot]. Stops after the op that\n"
"ends at or after deadline_ns (DEADLINE), after the op that ends budget_ns after the call began (BUDGET),\n"
"before an op that fails or is no regular file (FALLBACK, index = that op), or at the end (ALL_DONE).");

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
    Py_ssize_t total = PyList_GET_SIZE(paths);
    Py_ssize_t n = start >= 0 && start < total ? total - start : 0;
    Py_ssize_t nbounds = bounds.len / (Py_ssize_t)sizeof(int64_t);
    const char **cpaths = NULL;
    int64_t *values = NULL;
    if (nbounds + 1 > MAX_BUCKETS || scratch.len < 1) {
        PyErr_SetString(PyExc_ValueError, "too many size buckets or an empty scratch buffer");
        goto done;
    }
    cpaths = utf8_paths(paths, start, n);
    values = PyMem_Malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    if (cpaths == NULL || values == NULL) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    int64_t bytes[MAX_BUCKETS] = {0};
    const int64_t *bound = bounds.buf;
    char *buf = scratch.buf;
    int64_t cap = scratch.len, last_size = -1, bucket = 0;
    Py_ssize_t i = 0;
    int status = ALL_DONE;
    Py_BEGIN_ALLOW_THREADS
    int64_t began = now_ns();
    for (; i < n; i++) {
        int64_t t0 = now_ns();
        int fd = open(cpaths[i], flags);
        if (fd < 0) {
            status = FALLBACK;
            break;
        }
        off_t size = lseek(fd, 0, SEEK_END);
        if (size < 0 || size >= NOT_A_SIZE) {
            close(fd);
            status = FALLBACK;
            break;
        }
        int failed = 0;
        int64_t got = read_all(fd, buf, cap, size, &failed);
        if (close(fd) != 0 || failed) {
            status = FALLBACK;
            break;
        }
        int64_t t1 = now_ns();
        if (got != last_size) {
            bucket = 0;
            while (bucket < nbounds && bound[bucket] < got)
                bucket++;
            last_size = got;
        }
        values[i] = ((t1 - t0) / 1000) << bits | (base_slot + bucket);
        bytes[bucket] += got;
        if (t1 >= deadline) {
            status = DEADLINE;
            i++;
            break;
        }
        if (t1 - began >= budget) {
            status = BUDGET;
            i++;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    if (hand_over(raw, values, i, bytes_by_slot, base_slot, bytes, nbounds + 1) == 0)
        result = Py_BuildValue("ni", start + i, status);
done:
    PyMem_Free(cpaths);
    PyMem_Free(values);
    PyBuffer_Release(&scratch);
    PyBuffer_Release(&bounds);
    return result;
}

PyDoc_STRVAR(put_batch_doc,
"put_batch(paths, start, flags, mode, payload, offsets, size, slot, bits, raw, bytes_by_slot, deadline_ns,\n"
"          budget_ns) -> (index, status)\n\n"
"PUT paths[start:] in order: open with `flags` and `mode`, write payload[offsets[i] : offsets[i] + size]\n"
"(offsets an int64 buffer, one per path), close; the GIL released. Per op, raw.append((t1 - t0) // 1000 <<\n"
"bits | slot) and `size` added to bytes_by_slot[slot]. Stops as get_batch does.");

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
    Py_ssize_t total = PyList_GET_SIZE(paths);
    Py_ssize_t n = start >= 0 && start < total ? total - start : 0;
    const char **cpaths = NULL;
    int64_t *values = NULL;
    const int64_t *offset = offsets.buf;
    if (offsets.len / (Py_ssize_t)sizeof(int64_t) < total || size < 0) {
        PyErr_SetString(PyExc_ValueError, "one offset per path, and a size >= 0");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (offset[start + i] < 0 || offset[start + i] + size > payload.len) {
            PyErr_SetString(PyExc_ValueError, "an offset puts the payload slice outside the payload");
            goto done;
        }
    }
    cpaths = utf8_paths(paths, start, n);
    values = PyMem_Malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    if (cpaths == NULL || values == NULL) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    const char *data = payload.buf;
    int64_t written_total = 0;
    Py_ssize_t i = 0;
    int status = ALL_DONE;
    Py_BEGIN_ALLOW_THREADS
    int64_t began = now_ns();
    for (; i < n; i++) {
        int64_t t0 = now_ns();
        int fd = open(cpaths[i], flags, (mode_t)mode);
        if (fd < 0) {
            status = FALLBACK;
            break;
        }
        const char *from = data + offset[start + i];
        int64_t written = 0;
        int failed = 0;
        while (written < size) {
            ssize_t w = write(fd, from + written, (size_t)(size - written));
            if (w <= 0) {
                failed = 1;
                break;
            }
            written += w;
        }
        if (close(fd) != 0 || failed) {
            status = FALLBACK;
            break;
        }
        int64_t t1 = now_ns();
        values[i] = ((t1 - t0) / 1000) << bits | slot;
        written_total += size;
        if (t1 >= deadline) {
            status = DEADLINE;
            i++;
            break;
        }
        if (t1 - began >= budget) {
            status = BUDGET;
            i++;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    if (hand_over(raw, values, i, bytes_by_slot, slot, &written_total, 1) == 0)
        result = Py_BuildValue("ni", start + i, status);
done:
    PyMem_Free(cpaths);
    PyMem_Free(values);
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
    -1, methods,
};

PyMODINIT_FUNC PyInit__filebatch(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "ALL_DONE", ALL_DONE) < 0 || PyModule_AddIntConstant(m, "FALLBACK", FALLBACK) < 0 ||
        PyModule_AddIntConstant(m, "DEADLINE", DEADLINE) < 0 || PyModule_AddIntConstant(m, "BUDGET", BUDGET) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
