"""The suite tests the extension just built in place, for this Python."""

import os
import sys
import sysconfig

PACKAGE_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "subinterp"
)


def test_core_is_the_in_place_build_for_this_python():
    import subinterp._core as core

    # Not an installed copy, nor a build for another version.
    assert os.path.dirname(os.path.abspath(core.__file__)) == PACKAGE_DIR
    assert core.__file__.endswith(sysconfig.get_config_var("EXT_SUFFIX"))


def test_python_is_a_supported_gil_build():
    assert sys.version_info >= (3, 12)
    assert not sysconfig.get_config_var("Py_GIL_DISABLED")
