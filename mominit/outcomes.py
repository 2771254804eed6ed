"""How a member ended besides its errors: diverged (non-finite) or blown up (finite but exploded).

*Diverged* (``MemberState.alive`` False, ``diverged_at``): the loss or the parameters stopped
being finite; the engine freezes the member at its last finite state.

*Blown up* (``blown_up_at``): the loss stayed finite but exploded. With saturating units a huge
learning rate does not overflow: the sigmoids saturate and the loss sits at a large finite value
(CURVES with learning rates from 1e2 to 1e30 reports errors near 80-100 and no divergence). A
member is blown up at the first evaluation after which every chunk's mean training loss of the
window since the previous evaluation was above ``config.blowup_factor`` times its starting loss
(the loss at the initial parameters on the first minibatch). The member keeps training (its
numbers are still reported); ``blowup_factor = 0`` turns the test off.
"""
import numpy as np

NOT_BLOWN_UP = -1  # `blown_up_at` of a member that did not blow up


def blown_up(start_loss, window, factor: float) -> np.ndarray:
  """Which members blew up in one evaluation window.

  Args:
    start_loss: [P] the members' starting losses.
    window: the window's chunk mean losses, a list of [P] arrays (empty: nothing trained).
    factor: the multiple of the starting loss (0 = off).

  Returns:
    bool [P]: True where every chunk loss of the window is finite and above
    ``factor * start_loss`` (a non-finite loss is divergence, not this).
  """
  start_loss = np.asarray(start_loss, np.float64)
  if not factor or not window:
    return np.zeros(start_loss.shape, bool)
  losses = np.asarray(window, np.float64)  # [chunks, P]
  with np.errstate(invalid="ignore"):
    above = np.isfinite(losses) & (losses > factor * start_loss)
  return above.all(axis=0) & np.isfinite(start_loss)


def update(blown_up_at, start_loss, window, factor: float, step: int) -> np.ndarray:
  """``blown_up_at`` ([P] int) after the window ending at update ``step``: the first such step
  stays (a member that blew up stays blown up)."""
  blown_up_at = np.asarray(blown_up_at, np.int64)
  now = blown_up(start_loss, window, factor) & (blown_up_at == NOT_BLOWN_UP)
  return np.where(now, step, blown_up_at)
