"""Python source that, run first in a subprocess, removes root's power to ignore file permissions.

Root reads and writes any file because it has the capabilities CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
`DROP_FILE_PERMISSION_OVERRIDE` gives both up through capset(2), so file mode bits then apply to the process
as to any other user. For a user without those capabilities it changes nothing. When the kernel refuses, it
exits with a message that starts with "cannot drop capabilities", which a test can turn into a skip.
"""

DROP_FILE_PERMISSION_OVERRIDE = """
import ctypes, sys

class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
_libc = ctypes.CDLL(None, use_errno=True)
_header, _data = _Header(0x20080522, 0), (_Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
_keep = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF  # all but CAP_DAC_OVERRIDE (1) and CAP_DAC_READ_SEARCH (2)
if _libc.capget(ctypes.byref(_header), _data) != 0:
    sys.exit("cannot drop capabilities: capget failed")
for _name in ("effective", "permitted", "inheritable"):
    setattr(_data[0], _name, getattr(_data[0], _name) & _keep)
if _libc.capset(ctypes.byref(_header), _data) != 0:
    sys.exit("cannot drop capabilities: capset failed")
"""
