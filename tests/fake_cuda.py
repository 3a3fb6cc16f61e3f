"""A stand-in for the CUDA driver library (libcuda.so.1), for CPU-only runner tests.

`FakeCuda` is a loader: called with "libcuda.so.1" it returns a library whose
`cu*` functions take ctypes arguments, as the real driver's do through
`ctypes.CDLL`, and return CUresult codes. It enforces what the real driver
needs and what a wrong call would silently break on a GPU:

- cuInit before anything else, a current context before any allocation,
  copy or stream;
- every argument a ctypes value: a bare Python int would reach the real
  driver as a 32-bit C int and cut a 64-bit address;
- copies only into and out of live device buffers of sufficient size.

Device memory is host memory that only this fake hands out
(`DeviceMemory`). `tests.fake_tensorrt`'s execution context reads and writes
it by address and refuses any address that is not a live buffer, so a runner
that binds host arrays, or frees a buffer too early, fails here as it would
on a GPU. It is not CUDA: nothing here is asynchronous.
"""

import ctypes
from typing import Dict

SUCCESS = 0
INVALID_VALUE = 1
NOT_INITIALIZED = 3
NO_DEVICE = 100
INVALID_DEVICE = 101
INVALID_CONTEXT = 201
INVALID_HANDLE = 400
_CONTEXT = 0xC0DE


def _value(arg) -> int:
    """The integer a ctypes argument carries; anything else is a caller bug."""
    if not isinstance(arg, ctypes._SimpleCData):
        raise TypeError(f"CUDA driver argument {arg!r} is not a ctypes value")
    return arg.value or 0


def _store(reference, ctype, value: int) -> None:
    """Write an out-parameter passed as ctypes.byref(...)."""
    ctypes.cast(reference, ctypes.POINTER(ctype))[0] = value


class DeviceMemory:
    """Live fake device buffers by address; TensorRT's fake reads and writes here."""

    def __init__(self) -> None:
        self.buffers: Dict[int, ctypes.Array] = {}
        self.allocations = 0

    def allocate(self, nbytes: int) -> int:
        """A new buffer's address."""
        buffer = ctypes.create_string_buffer(nbytes)
        address = ctypes.addressof(buffer)
        self.buffers[address] = buffer
        self.allocations += 1
        return address

    def holds(self, address: int, nbytes: int) -> bool:
        """Whether [address, address + nbytes) is the start of one live buffer."""
        buffer = self.buffers.get(address)
        return buffer is not None and nbytes <= len(buffer)

    def read(self, address: int, nbytes: int) -> bytes:
        """Bytes of a live buffer; an AssertionError for anything else."""
        assert self.holds(address, nbytes), f"{address:#x} is not a live device buffer of {nbytes} bytes"
        return ctypes.string_at(address, nbytes)

    def write(self, address: int, data: bytes) -> None:
        """Fill the start of a live buffer; an AssertionError for anything else."""
        assert self.holds(address, len(data)), f"{address:#x} is not a live device buffer"
        ctypes.memmove(address, data, len(data))


class FakeCudaLibrary:
    """The driver functions the plan runner calls, by their real names."""

    def __init__(self, owner: "FakeCuda") -> None:
        self._owner = owner
        self.memory = owner.memory
        self.initialized = False
        self.current = 0
        self.streams = set()
        self.synchronized = []

    def _ready(self) -> int:
        if not self.initialized:
            return NOT_INITIALIZED
        return SUCCESS if self.current == _CONTEXT else INVALID_CONTEXT

    def cuInit(self, flags):  # noqa: N802 - the CUDA driver's names
        self.initialized = self._owner.init_status == SUCCESS
        return self._owner.init_status

    def cuDeviceGetCount(self, count):  # noqa: N802
        if not self.initialized:
            return NOT_INITIALIZED
        _store(count, ctypes.c_int, self._owner.devices)
        return SUCCESS

    def cuDeviceGet(self, device, ordinal):  # noqa: N802
        if _value(ordinal) >= self._owner.devices:
            return INVALID_DEVICE
        _store(device, ctypes.c_int, _value(ordinal))
        return SUCCESS

    def cuDevicePrimaryCtxRetain(self, context, device):  # noqa: N802
        if not self.initialized or _value(device) >= self._owner.devices:
            return INVALID_DEVICE
        _store(context, ctypes.c_void_p, _CONTEXT)
        return SUCCESS

    def cuCtxSetCurrent(self, context):  # noqa: N802
        self.current = _value(context)
        return SUCCESS if self.current == _CONTEXT else INVALID_CONTEXT

    def cuMemAlloc_v2(self, address, nbytes):  # noqa: N802
        status = self._ready()
        if status or _value(nbytes) < 1:
            return status or INVALID_VALUE
        _store(address, ctypes.c_uint64, self.memory.allocate(_value(nbytes)))
        return SUCCESS

    def cuMemFree_v2(self, address):  # noqa: N802
        status = self._ready()
        if status or self.memory.buffers.pop(_value(address), None) is None:
            return status or INVALID_VALUE
        return SUCCESS

    def cuMemcpyHtoD_v2(self, device, host, nbytes):  # noqa: N802
        status = self._ready()
        if status or not self.memory.holds(_value(device), _value(nbytes)):
            return status or INVALID_VALUE
        self.memory.write(_value(device), ctypes.string_at(_value(host), _value(nbytes)))
        return SUCCESS

    def cuMemcpyDtoH_v2(self, host, device, nbytes):  # noqa: N802
        status = self._ready()
        if status or not self.memory.holds(_value(device), _value(nbytes)):
            return status or INVALID_VALUE
        ctypes.memmove(_value(host), self.memory.read(_value(device), _value(nbytes)),
                       _value(nbytes))
        return SUCCESS

    def cuStreamCreate(self, stream, flags):  # noqa: N802
        status = self._ready()
        if status:
            return status
        handle = 0x5000 + len(self.streams) + 1
        self.streams.add(handle)
        _store(stream, ctypes.c_void_p, handle)
        return SUCCESS

    def cuStreamSynchronize(self, stream):  # noqa: N802
        if _value(stream) not in self.streams:
            return INVALID_HANDLE
        self.synchronized.append(_value(stream))
        return self._ready()


class FakeCuda:
    """Loader for `plan_runner.load(..., driver_loader=...)`: a fake libcuda.so.1.

    Args:
        devices: how many GPUs the driver reports.
        init_status: what cuInit returns (e.g. NO_DEVICE).
        missing: behave as if the library were not installed (OSError).
    """

    def __init__(self, devices: int = 1, init_status: int = SUCCESS, missing: bool = False) -> None:
        self.devices, self.init_status, self.missing = devices, init_status, missing
        self.memory = DeviceMemory()
        self.libraries = []

    def __call__(self, name: str) -> FakeCudaLibrary:
        """Open the library, as ctypes.CDLL would."""
        if self.missing or name != "libcuda.so.1":
            raise OSError(f"{name}: cannot open shared object file: No such file or directory")
        self.libraries.append(FakeCudaLibrary(self))
        return self.libraries[-1]
