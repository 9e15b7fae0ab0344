"""FrameContext: frames in, clips out (regions followed by track, keyframes, unknown ids)."""
from __future__ import annotations

import numpy as np
import pytest

from gar_ros.context.frame_context import ContextConfig, FrameContext
from gar_ros.errors import InputError, UnknownRegionError
from gar_ros.types import Region

H, W = 64, 128
DT = 100_000_000


def _obj(rid: str, cx: int, cy: int, r: int = 6) -> Region:
    mask = np.zeros((H, W), dtype=bool)
    mask[cy - r : cy + r, cx - r : cx + r] = True
    return Region(rid, mask=mask)


def _feed(ctx: FrameContext, n: int = 20, swap_from: int | None = None) -> None:
    for i in range(n):
        a, b = ("1", "2") if swap_from is None or i < swap_from else ("2", "1")
        regions = [_obj(a, 10 + 4 * i, 16), _obj(b, 118 - 4 * i, 48)]
        if 8 <= i < 11:
            regions = regions[1:]  # object of "1"/"2" at the top hidden for 3 frames
        ctx.add_frame(i * DT, np.zeros((H, W, 3), np.uint8), regions, frame_key=f"f{i}")


def test_clip_follows_tracks_and_spreads_keyframes() -> None:
    ctx = FrameContext(ContextConfig(context_frames=4, context_window=1.5, history_interval=0.0))
    _feed(ctx, swap_from=14)  # the detector swaps ids from frame 14 on
    # newest frame: id "2" is the top object (moving right)
    clip = ctx.clip(["2"])
    assert len(clip) == 4
    assert clip[-1].stamp == 19 * DT and clip[-1].key == "f19"
    assert clip[0].stamp >= 19 * DT - 1.5e9
    xs = [int(np.nonzero(f.regions["2"].mask)[1].min()) for f in clip]
    ys = [int(np.nonzero(f.regions["2"].mask)[0].min()) for f in clip]
    assert all(y == 10 for y in ys)  # always the top object, whatever its id was then
    assert xs == sorted(xs) and len(set(xs)) == 4
    assert all(f.stamp not in (8 * DT, 9 * DT, 10 * DT) for f in clip)  # hidden frames skipped


def test_clip_multi_region_and_missing_region() -> None:
    ctx = FrameContext(ContextConfig(context_frames=5, context_window=0.45, history_interval=0.0))
    _feed(ctx, n=11)  # "1" hidden in frames 8..10 (the newest)
    clip = ctx.clip(["2"])
    assert [f.stamp // DT for f in clip] == [6, 7, 8, 9, 10]
    with pytest.raises(UnknownRegionError) as err:
        ctx.clip(["1", "2"])  # "1" is not in the asked (newest) frame
    assert err.value.ids == ["1"]
    clip = ctx.clip(["1", "2"], stamp=7 * DT)
    assert clip[-1].stamp == 7 * DT
    assert all(set(f.regions) == {"1", "2"} for f in clip)


def test_k_zero_gives_the_asked_frame_only_and_bad_input() -> None:
    ctx = FrameContext(ContextConfig(context_frames=0))
    with pytest.raises(InputError):
        ctx.clip(["1"])
    _feed(ctx, n=5)
    clip = ctx.clip(["1"])
    assert len(clip) == 1 and clip[0].stamp == 4 * DT
    assert set(clip[0].all_regions) == {"1", "2"}
    with pytest.raises(InputError):
        ctx.clip(["1"], stamp=123)
    with pytest.raises(InputError):
        ContextConfig(context_frames=-1)


def test_history_thinning_and_id_bookkeeping_stay_bounded() -> None:
    ctx = FrameContext(ContextConfig(context_frames=3, history_frames=8, history_interval=0.0))
    for i in range(300):
        ctx.add_frame(i * DT, np.zeros((H, W, 3), np.uint8), [_obj("1", 10 + (i % 50), 16)])
    assert len(ctx.history) == 8 and len(ctx._ids) == 8
