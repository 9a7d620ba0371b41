"""napari widgets: thin Qt layers over the core (the SAM annotator and the fine-tune widget).

Importing this package guards against a crash seen with Mesa OpenGL drivers (llvmpipe under
Xvfb, radeonsi, ...): they load the system's libLLVM into napari's process, and loading
triton's own LLVM afterwards (torchvision imports it through torch) segfaults. When a libLLVM
is already mapped and triton is not loaded yet, triton is marked unavailable for this process,
which torch handles as "triton not installed" (nothing here needs it). Code that creates the
viewer itself (``devosam annotate``) imports segment_anything first and keeps triton.
"""

import sys


def avoid_llvm_clash() -> bool:
    """Run before importing segment_anything/torchvision; True if triton was marked absent."""
    if "triton" in sys.modules or not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/maps") as f:
            loaded = "libLLVM" in f.read()
    except OSError:
        return False
    if loaded:
        sys.modules["triton"] = None
    return loaded


avoid_llvm_clash()
