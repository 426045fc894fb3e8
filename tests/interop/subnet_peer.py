"""A py-libp2p peer that speaks the subnet protocols around the API the way
subnet-template nodes frame them (written for these tests from the wire
format; no template code).

Modes (machine-readable lines on stdout):
  dag-sync ADDR [--rounds N]
      Connects to ADDR and runs what a template node does at start-up:
      ask the peer for its inventory over /subnet/merkle_dag_sync_protocol/1.0.0
      (one varint-prefixed canonical-JSON request, one response), retrying
      once a second until it answers, at most N rounds. Prints
      "CONVERGED rounds=R secs=S" or "NOT-CONVERGED rounds=R",
      "INVENTORY <json>", then fetches the advertised heads (with ancestors)
      and one unknown id, verifies every node it got as the template does
      ("FETCHED <n> verified=<k> not_found=<json>"), then sends an unknown
      kind ("UNKNOWN closed|answered") and an oversized frame
      ("OVERSIZE closed|answered"). Exits 0.
  gossip ADDR --count N --forged M [--orphans K]
      Joins gossipsub on /meshsub/2.0.0 (the only id template nodes offer),
      subscribes to peer_state, waits until ADDR's peer is in its mesh, then
      publishes N peer-state DAG nodes it signs as template nodes do, M
      forged ones (payload changed after signing) and K signed ones whose
      parent never exists. Prints "PUBLISHED <ids>"
      and "FORGED <ids>" (node ids), then stays until stdin closes.
  dag-serve --count N --forged M [--node-id-base B]
      Serves /subnet/merkle_dag_sync_protocol/1.0.0 over a chain of N
      peer-state nodes it signs (each the parent of the next) plus M forged
      heads, as a template node answers inventory and fetch requests
      (ancestors followed to the depth asked). Prints "READY <addr>",
      "HEAD <id>" (the chain's head), then "ASKED <kind> FROM <peer id>" per
      request and
      "ANSWERED <kind>" once its answer is written (after --answer-delay
      seconds); stays until stdin closes. A failed answer raises, as a
      template node's handler does (a traceback on stderr).
"""

import argparse
import hashlib
import inspect
import json
import sys
import time

import multiaddr
import trio

from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair as ed25519_pair
from libp2p.crypto.x25519 import create_new_key_pair as x25519_pair
from libp2p.custom_types import TProtocol
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import Transport as NoiseTransport

from peer import uvarint  # the same varint as the API test peer (this directory)

DAG_SYNC = TProtocol("/subnet/merkle_dag_sync_protocol/1.0.0")
NOISE = TProtocol("/noise")


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


async def read_exact(stream, n):
    buf = b""
    while len(buf) < n:
        try:
            chunk = await stream.read(n - len(buf))
        except StreamEOF:
            chunk = b""
        if not chunk:
            raise EOFError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


async def read_frame(stream):
    shift = length = 0
    while True:
        b = await read_exact(stream, 1)
        length |= (b[0] & 0x7F) << shift
        if b[0] < 0x80:
            break
        shift += 7
    return await read_exact(stream, length)


async def ask(host, peer, payload):
    """One request, one response (None when the peer closed without one)."""
    stream = await host.new_stream(peer, [DAG_SYNC])
    try:
        await stream.write(uvarint(len(payload)) + payload)
        try:
            return await read_frame(stream)
        except EOFError:
            return None
    finally:
        await stream.close()


def message(kind, me, **extra):
    now = int(time.time() * 1000)
    return dict(kind=kind, message_id=f"{kind}:{me}:{now}", namespace="general-dag",
                peer_id=me, created_at_ms=now, **extra)


def verify(node):
    """The template's checks: node id, body hash and size, author, signature."""
    from libp2p.crypto.serialization import deserialize_public_key
    h, body = node["header"], node["body"]
    unsigned = {k: h[k] for k in ("author", "body_hash", "body_size", "created_at_ms", "metadata",
                                  "namespace", "parent_ids", "public_key", "schema_id", "version")}
    raw = canonical(unsigned)
    if "sha256:" + hashlib.sha256(raw).hexdigest() != h["node_id"]:
        return False
    payload = canonical(body["payload"])
    if "sha256:" + hashlib.sha256(payload).hexdigest() != h["body_hash"] or len(payload) != h["body_size"]:
        return False
    key = deserialize_public_key(bytes.fromhex(h["public_key"]))
    if ID.from_pubkey(key).to_base58() != h["author"]:
        return False
    return key.verify(raw, bytes.fromhex(h["signature"]))


async def dag_sync(args):
    key_pair = ed25519_pair()
    noise = NoiseTransport(key_pair, noise_privkey=x25519_pair().private_key)
    host = new_host(key_pair=key_pair, sec_opt={NOISE: noise})
    me = host.get_id().to_base58()
    info = info_from_p2p_addr(multiaddr.Multiaddr(args.addr))
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        with trio.fail_after(60):
            await host.connect(info)
            started = time.monotonic()
            inventory = None
            rounds = 0
            while rounds < args.rounds and inventory is None:
                rounds += 1
                try:
                    raw = await ask(host, info.peer_id, canonical(message("inventory_request", me, known_heads=[], node_count=0)))
                    if raw is not None:
                        inventory = json.loads(raw)
                except Exception as e:  # what a template node logs, then retries
                    print(f"ROUND-FAILED {type(e).__name__}", flush=True)
                if inventory is None:
                    await trio.sleep(1)
            if inventory is None:
                print(f"NOT-CONVERGED rounds={rounds}", flush=True)
                return
            print(f"CONVERGED rounds={rounds} secs={time.monotonic() - started:.3f}", flush=True)
            print(f"INVENTORY {json.dumps(inventory)}", flush=True)

            heads = inventory["summary"]["head_ids"]
            raw = await ask(host, info.peer_id, canonical(message(
                "fetch_request", me, node_ids=heads + ["sha256:" + "0" * 64],
                include_bodies=True, max_ancestor_depth=16)))
            fetched = json.loads(raw)
            nodes = fetched["nodes"]
            good = sum(1 for n in nodes if verify(n))
            print(f"FETCHED {len(nodes)} verified={good} not_found={json.dumps(fetched['not_found'])}", flush=True)

            raw = await ask(host, info.peer_id, canonical(message("announcement", me, head_ids=[], node_count=0)))
            print("UNKNOWN " + ("closed" if raw is None else "answered"), flush=True)

            stream = await host.new_stream(info.peer_id, [DAG_SYNC])
            await stream.write(uvarint(64 * 1024 * 1024) + b"{" * 1024)
            try:
                answered = await read_frame(stream) is not None
            except EOFError:
                answered = False
            except Exception:
                answered = False
            print("OVERSIZE " + ("answered" if answered else "closed"), flush=True)


def peer_state_node(key_pair, me, n, parents=(), node_id_base=100):
    payload = {"epoch": 1000 + n, "multiaddr": "/ip4/127.0.0.1/tcp/1", "role": 0, "state": 2,
               "subnet_id": 1, "subnet_node_id": node_id_base + n, "uid": f"test-{n}"}
    body = canonical(payload)
    header = {"author": me, "body_hash": "sha256:" + hashlib.sha256(body).hexdigest(),
              "body_size": len(body), "created_at_ms": int(time.time() * 1000), "metadata": dict(payload),
              "namespace": "general-dag", "parent_ids": list(parents),
              "public_key": key_pair.public_key.serialize().hex(), "schema_id": "peer-state", "version": 1}
    raw = canonical(header)
    header["node_id"] = "sha256:" + hashlib.sha256(raw).hexdigest()
    header["signature"] = key_pair.private_key.sign(raw).hex()
    return {"header": header, "body": {"node_id": header["node_id"], "payload": payload}}


async def publish_paced(pubsub, peer, data):
    """Publishes, first waiting while our queue to `peer` is nearly full:
    py-libp2p 0.8.x drops what does not fit its 32-RPC outbound queue."""
    queues = getattr(pubsub, "peer_queues", None)
    queue = queues.get(peer) if queues is not None else None
    while queue is not None and len(queue) > 16:
        await trio.sleep(0.001)
    await pubsub.publish("peer_state", data)


async def gossip(args):
    try:  # py-libp2p 0.8.x
        from libp2p.tools.anyio_service import background_trio_service
    except ImportError:  # 0.6.0
        from libp2p.tools.async_service import background_trio_service
    from libp2p.pubsub.gossipsub import GossipSub
    from libp2p.pubsub.pubsub import Pubsub

    key_pair = ed25519_pair()
    noise = NoiseTransport(key_pair, noise_privkey=x25519_pair().private_key)
    host = new_host(key_pair=key_pair, sec_opt={NOISE: noise})
    me = host.get_id().to_base58()
    extra = {}
    if "max_messages_per_topic_per_second" in inspect.signature(GossipSub.__init__).parameters:
        # 0.8.x drops its own messages past 10 per topic per second; a
        # flood must get out to test the receiver.
        extra["max_messages_per_topic_per_second"] = 10_000.0
    router = GossipSub(protocols=[TProtocol("/meshsub/2.0.0")], degree=7, degree_low=5, degree_high=10,
                       heartbeat_interval=1, **extra)
    pubsub = Pubsub(host, router, strict_signing=True)
    info = info_from_p2p_addr(multiaddr.Multiaddr(args.addr))
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        async with background_trio_service(pubsub):
            async with background_trio_service(router):
                await pubsub.wait_until_ready()
                subscription = await pubsub.subscribe("peer_state")

                async def drain():  # our own messages come back here; a full queue drops them
                    while True:
                        await subscription.get()

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(drain)
                    with trio.fail_after(60):
                        await host.connect(info)
                        while info.peer_id not in router.mesh.get("peer_state", set()):
                            await trio.sleep(0.1)
                    published, forged = [], []
                    for n in range(args.count):
                        node = peer_state_node(key_pair, me, n)
                        await publish_paced(pubsub, info.peer_id, canonical(envelope(me, node)))
                        published.append(node["header"]["node_id"])
                    for n in range(args.forged):
                        node = peer_state_node(key_pair, me, 1000 + n)
                        node["body"]["payload"]["state"] = 0  # changed after signing
                        await publish_paced(pubsub, info.peer_id, canonical(envelope(me, node)))
                        forged.append(node["header"]["node_id"])
                    for n in range(args.orphans):  # signed, but their parents never come
                        missing = "sha256:" + hashlib.sha256(f"never-{n}".encode()).hexdigest()
                        node = peer_state_node(key_pair, me, 2000 + n, (missing,))
                        await publish_paced(pubsub, info.peer_id, canonical(envelope(me, node)))
                    print("PUBLISHED " + " ".join(published), flush=True)
                    print("FORGED " + " ".join(forged), flush=True)
                    stdin = trio.wrap_file(sys.stdin)
                    while await stdin.readline():
                        pass
                    nursery.cancel_scope.cancel()


async def dag_serve(args):
    key_pair = ed25519_pair()
    noise = NoiseTransport(key_pair, noise_privkey=x25519_pair().private_key)
    host = new_host(key_pair=key_pair, sec_opt={NOISE: noise})
    me = host.get_id().to_base58()
    nodes, parent = {}, ()
    for n in range(args.count):
        node = peer_state_node(key_pair, me, n, parent, args.node_id_base)
        nodes[node["header"]["node_id"]] = node
        parent = (node["header"]["node_id"],)
    head = parent[0] if parent else None
    heads = [head] if head else []
    for n in range(args.forged):
        node = peer_state_node(key_pair, me, 1000 + n, parent, args.node_id_base)
        node["body"]["payload"]["state"] = 0  # changed after signing
        nodes[node["header"]["node_id"]] = node
        heads.append(node["header"]["node_id"])

    async def handler(stream):
        try:
            req = json.loads(await read_frame(stream))
            print(f"ASKED {req['kind']} FROM {stream.muxed_conn.peer_id.to_base58()}", flush=True)
            reply = dict(created_at_ms=int(time.time() * 1000), message_id=req["message_id"],
                         namespace=req["namespace"], peer_id=me)
            if req["kind"] == "inventory_request":
                reply.update(kind="inventory_response", summary=dict(
                    generated_at_ms=reply["created_at_ms"], head_ids=sorted(heads), namespace=req["namespace"],
                    node_count=len(nodes), orphan_count=0))
            elif req["kind"] == "fetch_request":
                found, missing, seen = [], [], set()
                frontier = [(i, 0) for i in req["node_ids"]]
                while frontier:
                    i, depth = frontier.pop(0)
                    if i in seen:
                        continue
                    seen.add(i)
                    if i not in nodes:
                        missing.append(i)
                        continue
                    found.append(nodes[i])
                    if depth < req.get("max_ancestor_depth", 0):
                        frontier += [(p, depth + 1) for p in nodes[i]["header"]["parent_ids"]]
                reply.update(kind="fetch_response", nodes=found, not_found=missing)
            else:
                await stream.close()
                return
            body = canonical(reply)
            if args.answer_delay > 0:
                await trio.sleep(args.answer_delay)
            await stream.write(uvarint(len(body)) + body)
            print(f"ANSWERED {req['kind']}", flush=True)
        finally:
            await stream.close()

    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        host.set_stream_handler(DAG_SYNC, handler)
        print(f"READY {host.get_addrs()[0]}", flush=True)
        print(f"HEAD {head}", flush=True)
        stdin = trio.wrap_file(sys.stdin)
        while await stdin.readline():
            pass


def envelope(me, node):
    now = int(time.time() * 1000)
    return {"created_at_ms": now, "kind": "node_gossip", "namespace": "general-dag", "peer_id": me,
            "message_id": f"node-gossip:{me}:{node['header']['node_id']}:{now}", "node": node}


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    d = sub.add_parser("dag-sync")
    d.add_argument("addr")
    d.add_argument("--rounds", type=int, default=5)
    g = sub.add_parser("gossip")
    g.add_argument("addr")
    g.add_argument("--count", type=int, default=3)
    g.add_argument("--forged", type=int, default=1)
    g.add_argument("--orphans", type=int, default=0)
    s = sub.add_parser("dag-serve")
    s.add_argument("--count", type=int, default=20)
    s.add_argument("--forged", type=int, default=1)
    s.add_argument("--answer-delay", type=float, default=0.0)
    # Peers that stand for different subnet nodes need their own ids.
    s.add_argument("--node-id-base", type=int, default=100)
    args = p.parse_args()
    if args.mode == "dag-sync":
        trio.run(dag_sync, args)
    elif args.mode == "gossip":
        trio.run(gossip, args)
    elif args.mode == "dag-serve":
        trio.run(dag_serve, args)


if __name__ == "__main__":
    sys.exit(main())
