#!/usr/bin/env python3
# Slowloris against one node at `ulimit -n 600` (the attack of issue 12): 700 connections
# that send half a header. Usage: scripts/slowloris.py target/debug/activenow
import socket, subprocess, time, os, sys, urllib.request
bin=sys.argv[1]
port=18931
env=dict(os.environ, PORT=str(port), BIND="127.0.0.1", RUST_LOG="warn")
p=subprocess.Popen(["bash","-c",f"ulimit -n 600; exec {bin} serve"], env=env, stderr=open("/tmp/i12b_slow.log","w"))
for _ in range(200):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read(); break
    except Exception: time.sleep(0.05)
socks=[]
t0=time.time()
for i in range(700):
    s=socket.socket(); s.settimeout(5)
    try:
        s.connect(("127.0.0.1",port)); s.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    except Exception as e:
        pass
    socks.append(s)
print(f"opened 700 slowloris connections in {time.time()-t0:.2f}s")
t1=time.time()
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
        break
    except Exception as e:
        time.sleep(0.2)
print(f"a normal GET /health was served {time.time()-t1:.2f}s after the flood (header timeout 10 s)")
closed=0
for s in socks:
    try:
        s.settimeout(15)
        if s.recv(10)==b"": closed+=1
    except Exception: closed+=1
print(f"{closed}/700 slowloris connections closed by the server, {time.time()-t0:.1f}s after the first")
p.terminate(); p.wait()
os.system("grep -c 'accept error' /tmp/i12b_slow.log")
