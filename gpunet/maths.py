"""The book's equations (chapters 1 to 3) as pure functions, in matrix form over the mini-batch.

Activations are columns, as in the book: ``a`` is ``(..., n, m)`` for ``m`` examples, ``w`` is
``(..., n_out, n_in)`` with ``w[j, k]`` joining neuron ``k`` to neuron ``j`` of the next layer, ``b`` is
``(..., n_out, 1)``; leading axes broadcast, so networks can be stacked. Only the Python array API
standard is called, on the arrays' own namespace.
"""

from __future__ import annotations

import math

from array_api_compat import array_namespace


def clip_floor(finfo) -> float:
    """Returns where every kernel's σ clips z from below, so that e^(-z) stays finite: -floor(log(finfo.max))."""
    return -math.floor(math.log(float(finfo.max)))


def sigmoid(xp, z):
    """σ(z) = 1 / (1 + e^(-z)) (eq. 3); z is clipped from below so e^(-z) cannot overflow."""
    return 1.0 / (1.0 + xp.exp(-xp.clip(z, min=clip_floor(xp.finfo(z.dtype)))))


def sigmoid_prime_of(a):
    """σ'(z) = σ(z)(1 - σ(z)), written in terms of the activation a = σ(z)."""
    return a * (1.0 - a)


def cost_derivative(output_activations, y):
    """∂C_x/∂a for the quadratic cost C_x = ½‖y - a^L‖² (eq. 6)."""
    return output_activations - y


class QuadraticCost:
    """Chapter 1's cost, C_x = ½‖y - a^L‖² (eq. 6), as the book's network2.py names it."""

    name = "quadratic"

    @staticmethod
    def fn(a, y):
        """Returns Σ_x C_x over the columns of ``a`` and ``y``: ½ Σ ‖a - y‖²."""
        xp = array_namespace(a)
        return 0.5 * xp.sum((a - y) * (a - y), axis=(-2, -1))

    @staticmethod
    def delta(a, y):
        """BP1 for the quadratic cost: δ^L = (a^L - y) ⊙ σ'(z^L)."""
        return cost_derivative(a, y) * sigmoid_prime_of(a)


class CrossEntropyCost:
    """Chapter 3's cost, C_x = -Σ_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)] (eq. 63)."""

    name = "cross-entropy"

    @staticmethod
    def fn(a, y):
        """Returns Σ_x C_x over the columns of ``a`` and ``y``. Where σ saturated (a = 0 or 1), ln 0 is taken as
        ln of the smallest normal number: finite where the book's ``np.nan_to_num`` gives the largest float."""
        xp = array_namespace(a)
        tiny = float(xp.finfo(a.dtype).smallest_normal)
        return xp.sum(-y * xp.log(xp.clip(a, min=tiny)) - (1.0 - y) * xp.log(xp.clip(1.0 - a, min=tiny)), axis=(-2, -1))

    @staticmethod
    def delta(a, y):
        """The cross-entropy's output error: δ^L = a^L - y (eq. 66), σ'(z^L) cancelled."""
        return a - y


COSTS = {cost.name: cost for cost in (QuadraticCost, CrossEntropyCost)}
INITS = ("large", "default")  # chapter 1's N(0, 1) weights; chapter 3's N(0, 1/n_in)


def initial_parameters(rng, sizes, init: str = "large"):
    """Returns ``(weights, biases)`` as float64 host arrays drawn by ``rng`` in the book's order, biases first.

    b ~ N(0, 1) either way; w ~ N(0, 1) for ``large`` (chapter 1), N(0, 1/n_in) for ``default`` (chapter 3).
    """
    biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
    weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]
    if init == "default":
        weights = [w / math.sqrt(w.shape[1]) for w in weights]
    return weights, biases


def weight_decay(eta, lmbda, n: int):
    """L2's factor on the weights at each step, 1 - ηλ/n (eq. 93); ``eta``, ``lmbda`` numbers or host arrays."""
    return 1.0 - eta * (lmbda / max(n, 1))


def l2_term(weights, lmbda: float, n: int):
    """Returns L2's term of the cost, ½(λ/n) Σ_w w² (eq. 85), a 0-d array (biases are not regularised)."""
    xp = array_namespace(weights[0])
    return 0.5 * (lmbda / n) * sum(xp.sum(w * w, axis=(-2, -1)) for w in weights)


def total_cost(weights, biases, x, y, cost=QuadraticCost, lmbda: float = 0.0):
    """Returns C = (1/n) Σ_x C_x + ½(λ/n) Σ_w w² (eq. 85) over the n columns of ``x`` and ``y``, a 0-d array."""
    n = x.shape[-1]
    return cost.fn(feedforward(weights, biases, x), y) / n + l2_term(weights, lmbda, n)


def feedforward(weights, biases, a):
    """The network's output for input columns ``a``: a' = σ(w a + b) (eq. 22)."""
    xp = array_namespace(a)
    for w, b in zip(weights, biases):
        a = sigmoid(xp, w @ a + b)
    return a


def backprop(weights, biases, x, y, cost=QuadraticCost):
    """Gradients of ``cost`` (quadratic: chapter 1's) summed over the columns of ``x``: (nabla_b, nabla_w).

    The book's ``backprop`` for every column of ``x`` and ``y`` at once, each of BP1-BP4 one array expression.
    """
    xp = array_namespace(x)
    activations = [x]  # a^1 = x, then a^l = σ(z^l), z^l = w^l a^(l-1) + b^l
    for w, b in zip(weights, biases):
        activations.append(sigmoid(xp, w @ activations[-1] + b))
    nabla_b = [None] * len(biases)
    nabla_w = [None] * len(weights)
    # BP1: δ^L = ∇_a C ⊙ σ'(z^L); a^L - y for the cross-entropy (eq. 66)
    delta = cost.delta(activations[-1], y)
    for l in range(1, len(weights) + 1):  # the book's l counts back from the output
        if l > 1:
            # BP2: δ^l = ((w^(l+1))^T δ^(l+1)) ⊙ σ'(z^l)
            delta = (xp.matrix_transpose(weights[-l + 1]) @ delta) * sigmoid_prime_of(activations[-l])
        # BP3: ∂C/∂b^l = δ^l, summed over the mini-batch
        nabla_b[-l] = xp.sum(delta, axis=-1, keepdims=True)
        # BP4: ∂C/∂w^l_jk = a^(l-1)_k δ^l_j, summed over the mini-batch: δ^l (a^(l-1))^T
        nabla_w[-l] = delta @ xp.matrix_transpose(activations[-l - 1])
    return nabla_b, nabla_w


def sgd_step(weights, biases, x, y, eta, cost=QuadraticCost, decay=1.0):
    """Returns the parameters after one step of gradient descent on a mini-batch of columns (eqs. 20-21).

    ``decay`` (:func:`weight_decay`, a number or an array broadcasting as ``eta``) is L2's
    w → (1 - ηλ/n) w - (η/m) Σ_x ∂C_x/∂w (eq. 93); biases are not regularised.
    """
    nabla_b, nabla_w = backprop(weights, biases, x, y, cost)
    scale = eta / x.shape[-1]
    if not isinstance(decay, float) or decay != 1.0:  # without L2: chapter 1's update, bit for bit
        weights = [decay * w for w in weights]
    weights = [w - scale * nw for w, nw in zip(weights, nabla_w)]
    biases = [b - scale * nb for b, nb in zip(biases, nabla_b)]
    return weights, biases


def mini_batch(size: int, n: int) -> int:
    """The mini-batch size SGD uses on n examples: at most the whole set, as the book's slicing makes it."""
    return min(size, max(n, 1))


def parameter_count(sizes) -> int:
    """The number of weights and biases of a network of layer ``sizes``."""
    return sum(n_in * n + n for n_in, n in zip(sizes[:-1], sizes[1:]))
