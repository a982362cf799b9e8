"""The backends xbackprop knows, in the order they are listed and tried (the default first).

A backend is one module in this folder defining one `Backend` subclass; registering it is
one line here, "module:Class". The modules are imported with xbackprop (they import their
array library only when the backend is first used), so each class's `name` and `modules`
are known without importing JAX, CuPy or anything else.
"""

BACKENDS = (
    "numpy_backend:NumpyBackend",
    "jax_backend:JaxBackend",
    "cupy_backend:CupyBackend",
    "array_api_strict_backend:ArrayApiStrictBackend",
    "torch_backend:TorchBackend",
)
