import pytest

from faceapp.core.errors import CancelledError
from faceapp.core.progress import CancelToken, EtaClock, Progress, run_to_completion


def _job(token: CancelToken):
    for i in range(5):
        token.raise_if_cancelled("counting")
        yield Progress("count", i + 1, 5)
    return "done"


def test_run_to_completion_returns_result_and_reports_each_step():
    seen = []
    assert run_to_completion(_job(CancelToken()), seen.append) == "done"
    assert [p.done for p in seen] == [1, 2, 3, 4, 5]
    assert seen[-1].fraction == 1.0


def test_cancel_stops_the_job():
    token = CancelToken()
    job = _job(token)
    next(job)
    token.cancel()
    with pytest.raises(CancelledError, match="counting cancelled"):
        next(job)


def test_eta_unknown_until_progress():
    clock = EtaClock(10)
    assert clock.eta(0) is None
    assert clock.eta(5) is not None and clock.eta(10) == 0.0
