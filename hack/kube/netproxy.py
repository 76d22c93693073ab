#!/usr/bin/env python3
"""Connects a hack/kube cluster's control plane (host network namespace, loopback only) with its
nodes (network namespaces), without touching the host's network:

  --relay NETNS ADDR:PORT TARGET:PORT   listen on ADDR:PORT inside NETNS (the fabric namespace) and
                                        forward each connection to TARGET:PORT in the host namespace
                                        (kubelets, kube-proxy, kube-router and pods reach the
                                        apiserver at 10.200.0.1:6443 this way)
  --egress SOCKET                       an HTTP CONNECT proxy on a unix socket, for the apiserver's
                                        egress selector ("cluster": exec, logs, port-forward, node,
                                        pod and service proxy): the connection is made from inside a
                                        node's network namespace
  --host NAME=IP                        a name the apiserver may dial (node name -> node IP)
  --route CIDR=NETNS                    which namespace dials addresses in CIDR (first match);
                                        anything else is dialled from --default-netns
  --default-netns NETNS

setns(CLONE_NEWNET) changes only the calling thread, so each connection is dialled by its own
thread, which enters the namespace, connects, and returns to the host namespace."""
import ctypes, ipaddress, os, socket, sys, threading

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
HOST_NS = os.open("/proc/self/ns/net", os.O_RDONLY)

def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))

def in_netns(path, fn):
    fd = os.open(path, os.O_RDONLY)
    try:
        setns(fd)
        try:
            return fn()
        finally:
            setns(HOST_NS)
    finally:
        os.close(fd)

def pipe(a, b):
    def one(src, dst):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                dst.sendall(d)
        except OSError:
            pass
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try: s.shutdown(how)
            except OSError: pass
    t = threading.Thread(target=one, args=(b, a), daemon=True); t.start()
    one(a, b); t.join(); a.close(); b.close()

def relay(lsock, target):
    while True:
        c, _ = lsock.accept()
        def handle(c=c):
            try:
                u = socket.create_connection(target, timeout=10); u.settimeout(None)
            except OSError as e:
                print(f"relay: {target}: {e}", file=sys.stderr, flush=True); c.close(); return
            pipe(c, u)
        threading.Thread(target=handle, daemon=True).start()

def egress(path, hosts, routes, default_ns):
    try: os.unlink(path)
    except FileNotFoundError: pass
    l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); l.bind(path); os.chmod(path, 0o600); l.listen(128)
    def handle(c):
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                d = c.recv(4096)
                if not d: c.close(); return
                buf += d
            head, rest = buf.split(b"\r\n\r\n", 1)
            line = head.split(b"\r\n")[0].decode()
            method, hostport = line.split()[:2]
            if method != "CONNECT":
                c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n"); c.close(); return
            host, port = hostport.rsplit(":", 1); host = host.strip("[]")
            ip = hosts.get(host, host)
            ns = default_ns
            try:
                a = ipaddress.ip_address(ip)
                for net, p in routes:
                    if a in net: ns = p; break
            except ValueError:
                pass
            u = in_netns(ns, lambda: socket.create_connection((ip, int(port)), timeout=10)); u.settimeout(None)
        except Exception as e:
            print(f"egress: {buf[:200]!r}: {e}", file=sys.stderr, flush=True)
            try: c.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            except OSError: pass
            c.close(); return
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest: u.sendall(rest)
        pipe(c, u)
    while True:
        c, _ = l.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()

def main(argv):
    relays, hosts, routes, default_ns, egress_path = [], {}, [], None, None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--relay":
            relays.append((argv[i+1], argv[i+2], argv[i+3])); i += 4; continue
        if a == "--egress": egress_path = argv[i+1]
        elif a == "--host": k, v = argv[i+1].split("=", 1); hosts[k] = v
        elif a == "--route": k, v = argv[i+1].split("=", 1); routes.append((ipaddress.ip_network(k), v))
        elif a == "--default-netns": default_ns = argv[i+1]
        else: sys.exit(f"netproxy: unknown argument {a}")
        i += 2
    threads = []
    for ns, listen, target in relays:
        la, lp = listen.rsplit(":", 1); ta, tp = target.rsplit(":", 1)
        def mk():
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((la, int(lp))); s.listen(128); return s
        s = in_netns(ns, mk)
        threads.append(threading.Thread(target=relay, args=(s, (ta, int(tp))), daemon=True))
    if egress_path:
        threads.append(threading.Thread(target=egress, args=(egress_path, hosts, routes, default_ns), daemon=True))
    for t in threads: t.start()
    print("netproxy: ready", flush=True)
    for t in threads: t.join()

main(sys.argv[1:])
