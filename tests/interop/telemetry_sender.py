"""Sends telemetry the way subnet-template nodes do with --telemetry_url
(written for these tests from the format; no template code): WebSocket
text messages, each an event signed with the node's libp2p key over the
sorted, space-free JSON of the event without signature and pubkey.

  telemetry_sender.py URL --count N
      sends N signed events, one forged (changed after signing) and one
      whose peer_id is not the signer's; prints "SENT <n>" and exits.
"""

import argparse
import json
import socket
import sys
import time

import trio
from trio_websocket import open_websocket_url

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID


def sign(key_pair, payload):
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    signed = dict(payload)
    signed["signature"] = key_pair.private_key.sign(canonical).hex()
    signed["pubkey"] = key_pair.public_key.serialize().hex()
    return signed


def event(key_pair, name, n):
    return {"event": name, "timestamp": time.time(), "host": socket.gethostname(), "subnet_id": 1,
            "subnet_node_id": 7, "peer_id": ID.from_pubkey(key_pair.public_key).to_string(),
            "data": {"n": n, "note": "café ✓", "ratio": 0.1 + n}}


async def main(args):
    key_pair = create_new_key_pair()
    messages = [sign(key_pair, event(key_pair, "api_call_remote", n)) for n in range(args.count)]
    forged = sign(key_pair, event(key_pair, "dag_node_received", 99))
    forged["data"]["n"] = 100  # changed after signing
    other = create_new_key_pair()
    impostor = event(key_pair, "node_started", 0)  # claims key_pair's peer id
    messages += [forged, sign(other, impostor)]
    async with open_websocket_url(args.url) as ws:
        for m in messages:
            await ws.send_message(json.dumps(m, separators=(",", ":")))
    print(f"SENT {len(messages)}", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--count", type=int, default=3)
    trio.run(main, p.parse_args())
