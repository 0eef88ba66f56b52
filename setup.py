"""Build script for the C core, ``subinterp._core``.

Every ``src/*.c`` file is one component of the core.  Extra compiler flags
come from the ``SUBINTERP_CFLAGS`` environment variable (the Makefile sets it
for warning, debug and sanitizer builds).
"""
import glob
import os
import shlex

from setuptools import Extension, setup

extra = shlex.split(os.environ.get("SUBINTERP_CFLAGS", ""))
ldflags = shlex.split(os.environ.get("SUBINTERP_LDFLAGS", ""))

setup(
    ext_modules=[
        Extension(
            "subinterp._core",
            sources=sorted(glob.glob("src/*.c")),
            depends=sorted(glob.glob("src/*.h")),
            include_dirs=["src"],
            extra_compile_args=["-std=c11", *extra],
            extra_link_args=ldflags,
        )
    ]
)
