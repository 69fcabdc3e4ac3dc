"""A provisioning webhook receiver for the lab, in 20 lines: on a shortfall, start a lab cluster
and register it with the daemon. A real one calls a cloud API instead of the lab's.

    python examples/provision_receiver.py LAB_CONTROL ADMIN_URL ADMIN_TOKEN [PORT]
"""
import sys

from aiohttp import ClientSession, web

LAB, ADMIN, TOKEN = sys.argv[1:4]


async def provision(request: web.Request) -> web.Response:
    shortfall = await request.json()  # {"shortfall_rps", "at_capacity", "plan_version", ...}
    async with ClientSession() as http:
        async with http.post(f"{LAB}/v1/clusters", json={}) as made:
            new = await made.json()  # its name, DNS server, HTTP URL, answer address
        cluster = {"weight": 40, "capacity_rps": max(100, shortfall["shortfall_rps"] * 2),
                   "dns": {"server": new["dns"], "names": ["api.default.svc.cluster.local"],
                           "expect": [new["answer"]]},
                   "checks": [{"http": new["http"] + "/healthz"}]}
        async with http.put(f"{ADMIN}/v1/clusters/{new['name']}", json=cluster,
                            headers={"Authorization": f"Bearer {TOKEN}"}) as registered:
            return web.json_response(await registered.json(), status=registered.status)


app = web.Application()
app.router.add_post("/provision", provision)
if __name__ == "__main__":
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[4]) if len(sys.argv) > 4 else 9480)
