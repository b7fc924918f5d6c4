"""The daily partitions start at the first delivery date (issue: 1,070 missing partitions, every day since 2024-01-01)."""

from datetime import date

import pytest

from prism_assets.partitions import FirstDateError, first_delivery_date

pytestmark = pytest.mark.unit
TODAY = date(2026, 12, 6)


def test_the_setting_wins_and_is_never_later_than_the_sensor_window(tmp_path):
    env = {"PRISM_DELIVERY_ROOT": str(tmp_path)}
    assert first_delivery_date({**env, "PRISM_FIRST_DELIVERY_DATE": "2025-03-01"}, TODAY) == date(2025, 3, 1)
    assert first_delivery_date({**env, "PRISM_FIRST_DELIVERY_DATE": "2027-01-01"}, TODAY) == date(2026, 12, 3)  # 3 look-back days
    assert first_delivery_date({**env, "PRISM_FIRST_DELIVERY_DATE": "2027-01-01", "PRISM_SENSOR_LOOKBACK_DAYS": "10"}, TODAY) == date(2026, 11, 26)
    for bad in ("2025-13-01", "yesterday", "2025-1-1"):
        with pytest.raises(FirstDateError, match="PRISM_FIRST_DELIVERY_DATE"):
            first_delivery_date({**env, "PRISM_FIRST_DELIVERY_DATE": bad}, TODAY)


def test_default_is_the_first_date_on_record(tmp_path):
    env = {"PRISM_DELIVERY_ROOT": str(tmp_path)}
    assert first_delivery_date(env, TODAY) == date(2026, 12, 3)  # nothing on record: the sensor's window
    for d in ("2026-11-20", "2026-11-28"):
        (tmp_path / d / "t1").mkdir(parents=True)
    (tmp_path / "2026-02-30").mkdir()  # not a date
    (tmp_path / "notes").mkdir()
    (tmp_path / "2020-01-01").write_text("a file, not a delivery folder")
    assert first_delivery_date(env, TODAY) == date(2026, 11, 20)
    assert first_delivery_date({"PRISM_DELIVERY_ROOT": "s3://bucket/deliveries"}, TODAY) == date(2026, 12, 3)  # not listed at load
    assert first_delivery_date({"PRISM_DELIVERY_ROOT": str(tmp_path / "absent")}, TODAY) == date(2026, 12, 3)
