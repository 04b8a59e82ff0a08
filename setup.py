"""Build the optional C speedups; everything else is configured in pyproject.toml.

``ddbsync._speedups`` uses only the limited C API (abi3), so one binary per CPU
architecture serves CPython 3.11 and later. It is optional: without a C compiler
the install still succeeds and ddbsync runs its pure-Python decoder (same results,
slower). The test suite fails loudly when the module is missing unless
DDBSYNC_PURE_PYTHON=1 says that is intended. The Lambda layer compiles it for its
own target (layers/ddbsync/Makefile).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ddbsync._speedups",
            sources=["layers/ddbsync/ddbsync/_speedups.c"],
            py_limited_api=True,
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
            optional=True,
        )
    ],
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
