"""A py-libp2p peer that runs /subnet/api_protocol/1.0.0 the way the deployed
subnet-template nodes do: the request read with a single read, the backend
reached with httpx (5 s default timeout), the response written raw, and a
unary response read by the caller with a single read.

The protobuf message is hand-encoded (the wire bytes are what matter).

Modes (each prints one machine-readable line first, then runs):
  serve  --routes FILE [--security noise|pos|both] [--no-ping] [--evict-every SECS]
         prints "READY <multiaddr>", serves until killed; a stdin line
         "call <multiaddr> <route>" makes this host call that peer over its
         existing connection and print "CALLED <hex of the body>"
  call   ADDR ROUTE [--method M] [--body B | --body-size N] [--stream]
         [--security noise|pos] writes the response bytes to stdout
  keygen PATH --type ed25519|secp256k1   prints the peer id
"""

import argparse
import json
import sys

import httpx
import multiaddr
import trio

from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair as ed25519_pair
from libp2p.crypto.secp256k1 import create_new_key_pair as secp256k1_pair
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as x25519_pair
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import Transport as NoiseTransport

PROTOCOL = TProtocol("/subnet/api_protocol/1.0.0")
POS = TProtocol("/pos-transport/1.0.0")
NOISE = TProtocol("/noise")
PING = TProtocol("/ipfs/ping/1.0.0")
MAX_READ_LEN = 2**32 - 1


def uvarint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_uvarint(data, i):
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def field(tag, wire, payload):
    key = uvarint((tag << 3) | wire)
    if wire == 0:
        return key + uvarint(payload)
    return key + uvarint(len(payload)) + payload


def encode_request(route, method, headers, body, stream):
    out = field(1, 2, route.encode()) + field(2, 2, method.encode())
    for k, v in headers.items():
        out += field(3, 2, field(1, 2, k.encode()) + field(2, 2, v.encode()))
    if body:
        out += field(4, 2, body)
    if stream:
        out += field(5, 0, 1)
    return out


def decode_request(data):
    msg = {"route": "", "method": "", "headers": {}, "body": b"", "stream": False}
    i = 0
    while i < len(data):
        key, i = read_uvarint(data, i)
        tag, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_uvarint(data, i)
            if tag == 5:
                msg["stream"] = value == 1
            continue
        length, i = read_uvarint(data, i)
        payload = data[i : i + length]
        i += length
        if tag == 1:
            msg["route"] = payload.decode()
        elif tag == 2:
            msg["method"] = payload.decode()
        elif tag == 4:
            msg["body"] = payload
        elif tag == 3:
            entry = decode_request(payload)  # map entries: 1 = key, 2 = value
            msg["headers"][entry["route"]] = entry["method"]
    return msg


def security(key_pair, which):
    noise = NoiseTransport(key_pair, noise_privkey=x25519_pair().private_key)
    if which == "pos":
        return {POS: noise}
    if which == "both":
        return {NOISE: noise, POS: noise}
    return {NOISE: noise}


def load_routes(path):
    with open(path) as f:
        raw = json.load(f)
    routes = {}
    for name, entry in raw.items():
        if isinstance(entry, str):
            routes[name] = {"url": entry, "stream": False}
        else:
            routes[name] = {"url": entry["url"], "stream": bool(entry.get("stream", False))}
    return routes


async def serve(args):
    key_pair = ed25519_pair()
    host = new_host(key_pair=key_pair, sec_opt=security(key_pair, args.security))
    routes = load_routes(args.routes)

    async def handler(stream):
        caller = getattr(getattr(stream, "muxed_conn", None), "peer_id", None)
        if args.keep and (caller is None or caller.to_base58() not in args.keep):
            # Not on the roster: not served, and dropped.
            print(f"REFUSED {caller}", flush=True)
            await stream.reset()
            return
        # One read of up to 4 GiB, as the deployed nodes do: it returns what
        # has arrived (a bare read() would wait for EOF on py-libp2p 0.6.0).
        data = await stream.read(MAX_READ_LEN)
        length, off = read_uvarint(data, 0)
        req = decode_request(data[off : off + length])
        route = routes.get(req["route"])
        try:
            if req["route"] == "__request_bytes__":
                # For tests: the request exactly as it arrived.
                await stream.write(data)
            elif route is None:
                await stream.write(b"Route not found")
            elif req["stream"] and not route["stream"]:
                await stream.write(f"Route does not support streaming: {req['route']}".encode())
            else:
                try:
                    async with httpx.AsyncClient() as client:
                        kwargs = dict(headers=req["headers"], content=req["body"] or None)
                        if req["stream"]:
                            async with client.stream(req["method"] or "GET", route["url"], **kwargs) as resp:
                                async for chunk in resp.aiter_raw():
                                    await stream.write(chunk)
                        else:
                            resp = await client.request(req["method"] or "GET", route["url"], **kwargs)
                            await stream.write(resp.content)
                except Exception as e:  # the deployed nodes' catch-all
                    await stream.write(f"Error processing request: {e}".encode())
        finally:
            await stream.close()

    listen = multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")
    async with host.run(listen_addrs=[listen]):
        host.set_stream_handler(PROTOCOL, handler)
        if args.no_ping:
            # A host without ping: what peers propose to it must be refused cleanly.
            if hasattr(host, "remove_stream_handler"):
                host.remove_stream_handler(PING)
            else:  # py-libp2p 0.6.0 has no remove_stream_handler
                host.get_mux().handlers.pop(PING, None)
        addr = host.get_addrs()[0]
        print(f"READY {addr}", flush=True)
        async with trio.open_nursery() as nursery:
            if args.evict_every:
                nursery.start_soon(evict, host, args.evict_every, set(args.keep))
            await commands(host)


async def evict(host, every, keep):
    """A strict subnet's connection maintenance: every tick, disconnect
    every connected peer that is not registered (`keep`)."""
    while True:
        await trio.sleep(every)
        for peer in list(host.get_connected_peers()):
            if peer.to_base58() in keep:
                continue
            try:
                await host.disconnect(peer)
                print(f"EVICTED {peer}", flush=True)
            except Exception as e:  # reported, never fatal
                print(f"EVICT-FAILED {type(e).__name__}", flush=True)


async def commands(host):
    """Serves stdin commands until stdin closes, then runs until killed."""
    stdin = trio.wrap_file(sys.stdin)
    while True:
        line = await stdin.readline()
        if not line:
            await trio.sleep_forever()
        parts = line.split()
        if len(parts) == 3 and parts[0] == "time":
            # A call timed on this side, the body counted, not printed.
            try:
                with trio.fail_after(120):
                    start = trio.current_time()
                    body = await call_once(host, multiaddr.Multiaddr(parts[1]), parts[2])
                    took = trio.current_time() - start
                print(f"TIMED {len(body)} {took:.6f}", flush=True)
            except Exception as e:
                print(f"CALL-FAILED {type(e).__name__}", flush=True)
        elif len(parts) == 3 and parts[0] == "call":
            try:
                with trio.fail_after(20):
                    body = await call_once(host, multiaddr.Multiaddr(parts[1]), parts[2])
                print(f"CALLED {body.hex()}", flush=True)
            except Exception as e:  # reported to the test, never fatal
                print(f"CALL-FAILED {type(e).__name__}", flush=True)


async def call_once(host, maddr, route):
    info = info_from_p2p_addr(maddr)
    await host.connect(info)
    stream = await host.new_stream(info.peer_id, [PROTOCOL])
    msg = encode_request(route, "GET", {}, b"", False)
    await stream.write(uvarint(len(msg)) + msg)
    parts = []
    while True:
        try:
            chunk = await stream.read(65536)
        except StreamEOF:
            break
        if not chunk:
            break
        parts.append(chunk)
    body = b"".join(parts)
    await stream.close()
    return body


async def call(args):
    key_pair = ed25519_pair()
    host = new_host(key_pair=key_pair, sec_opt=security(key_pair, args.security))
    maddr = multiaddr.Multiaddr(args.addr)
    info = info_from_p2p_addr(maddr)
    body = args.body.encode() if args.body else b"x" * args.body_size
    async with host.run(listen_addrs=[]):
        with trio.fail_after(30):
            await host.connect(info)
            stream = await host.new_stream(info.peer_id, [PROTOCOL])
            msg = encode_request(args.route, args.method, {}, body, args.stream)
            await stream.write(uvarint(len(msg)) + msg)
            out = sys.stdout.buffer
            if args.stream:
                # py-libp2p signals the end of a stream by raising StreamEOF.
                while True:
                    try:
                        chunk = await stream.read(4096)
                    except StreamEOF:
                        break
                    if not chunk:
                        break
                    out.write(chunk)
            else:
                out.write(await stream.read(MAX_READ_LEN))  # one read, as the deployed nodes do
            out.flush()
            await stream.close()


def keygen(args):
    if args.type == "ed25519":
        pair = ed25519_pair()
    else:
        pair = secp256k1_pair()
    with open(args.path, "wb") as f:
        f.write(pair.private_key.serialize())
    # Read it back as subnet-template does, and print the peer id it derives.
    with open(args.path, "rb") as f:
        private = deserialize_private_key(f.read())
    print(ID.from_pubkey(KeyPair(private, private.get_public_key()).public_key).to_base58())


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--routes", required=True)
    s.add_argument("--security", default="noise", choices=["noise", "pos", "both"])
    s.add_argument("--no-ping", action="store_true")
    s.add_argument("--evict-every", type=float, default=0.0)
    # A strict subnet's roster: only these peer ids are served and kept.
    s.add_argument("--keep", action="append", default=[])
    c = sub.add_parser("call")
    c.add_argument("addr")
    c.add_argument("route")
    c.add_argument("--method", default="GET")
    c.add_argument("--body", default="")
    c.add_argument("--body-size", type=int, default=0)
    c.add_argument("--stream", action="store_true")
    c.add_argument("--security", default="noise", choices=["noise", "pos"])
    k = sub.add_parser("keygen")
    k.add_argument("path")
    k.add_argument("--type", default="ed25519", choices=["ed25519", "secp256k1"])
    args = p.parse_args()
    if args.mode == "serve":
        trio.run(serve, args)
    elif args.mode == "call":
        trio.run(call, args)
    else:
        keygen(args)


if __name__ == "__main__":
    main()
