"""create.py LIB - calls Tiny_create of model library LIB (so.sdl) and
prints "rc <status> <last error>" on failure, "rc 0 device <device>"."""
import ctypes
import sys

lib = ctypes.CDLL(sys.argv[1])
lib.Tiny_last_error.restype = ctypes.c_char_p
model = ctypes.c_void_p()
rc = lib.Tiny_create(ctypes.c_uint64(7), ctypes.byref(model))
if rc != 0:
    print("rc", rc, lib.Tiny_last_error().decode())
    sys.exit(0)
device = ctypes.c_char_p()
lib.Tiny_device(model, ctypes.byref(device))
print("rc 0 device", device.value.decode())
lib.Tiny_destroy(model)
