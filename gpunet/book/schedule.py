"""Chapter 3's two rules over the accuracy on the evaluation data, one epoch at a time: early stopping ("the
no-improvement-in-n rule": stop after ``stop_after`` epochs without a new best) and the learning-rate schedule
(halve eta after ``halve_eta`` epochs without a new best or a halving, the run ending when eta is 1/128 of its
start: the chapter's exercise)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

LOWEST = 7  # halvings: eta / 2**7 = eta / 128 ends the run


@dataclass
class Schedule:
    """Where the rules stand after the epochs so far; ``eta(start)`` is the next epoch's learning rate."""

    best: int = -1  # the best count of right answers so far (-1: none scored yet)
    stall: int = 0  # epochs since the best
    calm: int = 0  # epochs since the best or the last halving
    halvings: int = 0

    def eta(self, start: float) -> float:
        return start / 2**self.halvings

    def after(self, correct: int, stop_after: int = 0, halve_eta: int = 0) -> str:
        """Counts one scored epoch; returns why the run stops here ("" to go on). 0 leaves a rule off."""
        if correct > self.best:
            self.best, self.stall, self.calm = correct, 0, 0
        else:
            self.stall, self.calm = self.stall + 1, self.calm + 1
        if stop_after and self.stall >= stop_after:
            return f"no improvement on the evaluation data in {self.stall} epochs (stop after {stop_after})"
        if halve_eta and self.calm >= halve_eta:
            self.halvings, self.calm = self.halvings + 1, 0
            if self.halvings >= LOWEST:
                return f"eta halved {LOWEST} times, to 1/128 of its start (halve eta after {halve_eta})"
        return ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, state: dict, error) -> Schedule:
        """The schedule a model file keeps, each count checked; ``error(message)`` for a bad one."""
        if not isinstance(state, dict) or set(state) != {"best", "stall", "calm", "halvings"}:
            raise error("its schedule is not an object of best, stall, calm, halvings")
        for k, v in state.items():
            low = -1 if k == "best" else 0
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= low):
                raise error(f"its schedule's {k} must be a whole number >= {low}, got {v!r}")
        return cls(**state)
