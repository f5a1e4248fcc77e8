"""The fault proxy's holds: which writes they match, and their control API."""

from __future__ import annotations

import httpx
import orjson

from simulators.faultproxy import FaultProxy, Hold


def test_a_hold_matches_the_writes_of_its_employee_only() -> None:
    hold = Hold("7", seconds=1.0)
    assert hold.matches("POST", orjson.dumps({"externalId": "7", "userName": "eve"}))
    assert not hold.matches("POST", orjson.dumps({"externalId": "70"}))
    assert not hold.matches("PATCH", orjson.dumps({"externalId": "7"}))
    assert not hold.matches("POST", b"not json")


async def test_holds_are_set_listed_and_cleared_over_the_control_api() -> None:
    proxy = FaultProxy("http://127.0.0.1:1")
    transport = httpx.ASGITransport(app=proxy.app())
    async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
        hold = {"external_id": "7", "seconds": 4, "forward": "after"}
        response = await client.put("/_proxy/holds", json=[hold])
        assert response.status_code == 200
        assert response.json() == [
            {"external_id": "7", "seconds": 4.0, "forward": "after", "method": "POST", "times": 1}
        ]
        assert proxy.holds == [Hold("7", seconds=4.0, forward="after")]
        refused = await client.put("/_proxy/holds", json=[{"external_id": "7", "forward": "x"}])
        assert refused.status_code == 400
        assert (await client.delete("/_proxy/holds")).json() == []
        assert proxy.holds == []
