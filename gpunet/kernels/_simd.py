"""SIMD vectors inside numba-compiled code, through numba's public extension API only.

A row held in a few vector registers, not scalar code or sums in memory, is what makes the vector epoch
fast (:mod:`gpunet.kernels._vector_epoch`). :class:`Vec` is a numba type whose value is an LLVM vector
``<lanes x float|double>``; the intrinsics below work lane by lane, multiply and add kept separate (no
fused multiply-add), so each lane rounds as the scalar ``s += a * b`` does, bit for bit. :func:`vsplat`
makes one 64-byte vector (an AVX-512 register), :func:`vconcat` doubles a width; a function taking a
vector compiles once per width. Loads and stores take a flat element offset into a C-contiguous array
and do not check bounds: the caller pads every row to whole vectors.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

BYTES = 64  # one vector of :func:`vsplat`: an AVX-512 register


class Vec(types.Type):
    """``lanes`` values of ``dtype`` (float32 or float64) as one LLVM vector."""

    def __init__(self, dtype, lanes: int):
        self.dtype, self.lanes = dtype, lanes
        super().__init__(name=f"Vec({dtype} x {lanes})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def lanes(dtype) -> int:
    """Lanes of one :func:`vsplat` vector of a NumPy dtype: rows are padded to a multiple of this."""
    return BYTES // dtype.itemsize


def _float(ty) -> bool:
    return isinstance(ty, types.Float)


def _pointer(context, builder, array_type, array, offset, vector_type):
    """Address of element ``offset`` of a C-contiguous array, as a pointer to ``vector_type``."""
    data = context.make_array(array_type)(context, builder, array).data
    element = context.get_value_type(array_type.dtype)
    address = builder.gep(data, [offset], inbounds=True, source_etype=element)
    return builder.bitcast(address, vector_type.as_pointer())


def _contiguous(array) -> bool:
    return isinstance(array, types.Array) and array.layout == "C" and _float(array.dtype)


def _broadcast(context, builder, vec, value):
    """``value`` in every lane of a ``vec``: insert into lane 0, shuffle lane 0 everywhere."""
    llvec = context.get_value_type(vec)
    first = builder.insert_element(ir.Constant(llvec, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), vec.lanes), [0] * vec.lanes)
    return builder.shuffle_vector(first, ir.Constant(llvec, ir.Undefined), zeros)


@intrinsic
def vsplat(typingctx, x):
    """One 64-byte vector with every lane ``x`` (a float32 or float64)."""
    if not _float(x):
        return None
    vec = Vec(x, BYTES * 8 // x.bitwidth)

    def codegen(context, builder, sig, args):
        return _broadcast(context, builder, vec, args[0])

    return vec(x), codegen


@intrinsic
def vconcat(typingctx, a, b):
    """The lanes of ``a`` then those of ``b``: a vector twice as wide."""
    if not (isinstance(a, Vec) and a == b):
        return None
    vec = Vec(a.dtype, 2 * a.lanes)

    def codegen(context, builder, sig, args):
        every = ir.Constant(ir.VectorType(ir.IntType(32), vec.lanes), list(range(vec.lanes)))
        return builder.shuffle_vector(args[0], args[1], every)

    return vec(a, b), codegen


@intrinsic
def vfill(typingctx, x, like):
    """A vector as wide as ``like`` with every lane ``x`` (converted to its dtype)."""
    if not (isinstance(like, Vec) and isinstance(x, (types.Float, types.Integer))):
        return None

    def codegen(context, builder, sig, args):
        return _broadcast(context, builder, like, context.cast(builder, args[0], sig.args[0], like.dtype))

    return like(x, like), codegen


@intrinsic
def vload(typingctx, array, offset, like):
    """The ``like``-wide vector at element ``offset`` of a C-contiguous float array (unaligned, unchecked)."""
    if not (_contiguous(array) and isinstance(offset, types.Integer) and isinstance(like, Vec)):
        return None
    if array.dtype != like.dtype:
        return None

    def codegen(context, builder, sig, args):
        offset = context.cast(builder, args[1], sig.args[1], types.intp)
        llvec = context.get_value_type(like)
        return builder.load(_pointer(context, builder, array, args[0], offset, llvec), align=array.dtype.bitwidth // 8)

    return like(array, offset, like), codegen


@intrinsic
def vstore(typingctx, array, offset, value):
    """Store vector ``value`` at element ``offset`` of a C-contiguous float array (unaligned, unchecked)."""
    if not (_contiguous(array) and isinstance(offset, types.Integer) and isinstance(value, Vec)):
        return None
    if array.dtype != value.dtype:
        return None

    def codegen(context, builder, sig, args):
        offset = context.cast(builder, args[1], sig.args[1], types.intp)
        pointer = _pointer(context, builder, array, args[0], offset, context.get_value_type(value))
        builder.store(args[2], pointer, align=array.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(array, offset, value), codegen


def _lanewise(instruction: str):
    @intrinsic
    def op(typingctx, a, b):
        if not (isinstance(a, Vec) and a == b):
            return None

        def codegen(context, builder, sig, args):
            return getattr(builder, instruction)(args[0], args[1])

        return a(a, b), codegen

    op.__doc__ = f"Lane by lane, ``a {instruction} b``, rounded once per lane (IEEE 754)."
    return op


vadd, vsub, vmul = _lanewise("fadd"), _lanewise("fsub"), _lanewise("fmul")


@intrinsic
def prefetch(typingctx, array, offset):
    """Ask the CPU to bring the cache line of element ``offset`` of a C-contiguous array closer (a hint)."""
    if not (isinstance(array, types.Array) and array.layout == "C" and isinstance(offset, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(array)(context, builder, args[0]).data
        offset = context.cast(builder, args[1], sig.args[1], types.intp)
        address = builder.gep(data, [offset], inbounds=True, source_etype=context.get_value_type(array.dtype))
        byte = builder.bitcast(address, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        name = "llvm.prefetch.p0" if str(byte.type) == "ptr" else "llvm.prefetch.p0i8"  # opaque or typed pointers
        signature = ir.FunctionType(ir.VoidType(), [byte.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, signature, name)
        builder.call(fn, [byte, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])  # read, keep, data
        return context.get_dummy_value()

    return types.none(array, offset), codegen
