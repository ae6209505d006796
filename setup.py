"""The one part of sbench that is compiled: file:// GETs and PUTs in batches with the GIL released
(sbench/storage/filebatch.py says why). Optional: where no C compiler or Python headers are found the install
still succeeds, and file:// runs its Python loop (a stage's details say which loop ran, and why)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sbench.storage._filebatch",
            sources=["sbench/storage/filebatch.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)
