"""Why a process stage's thread waits for a worker's answer with ``poll`` (issue 32).

    python python/bench/wakeups.py [--n 300]

A thread sends a message on a Unix stream socket and blocks reading the answer; the peer takes
the message 1 ms later and answers 1 ms after that. Blocked in ``recv``, the thread is woken
twice per exchange (the kernel wakes the socket's one wait queue when the peer takes the
message: the socket turned writable), so it switches out and in twice; waiting in
``poll(POLLIN)`` first, once. Counted: the thread's voluntary context switches per exchange
(``/proc/thread-self/status``), both ways alternated in one process, every run printed.
"""

import argparse
import os
import select
import socket
import time


def vcsw():
    with open("/proc/thread-self/status") as f:
        return int(next(line for line in f if line.startswith("voluntary")).split()[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    print("load average %.2f %.2f %.2f" % os.getloadavg())
    a, b = socket.socketpair()
    rounds = args.reps * 2 * args.n
    pid = os.fork()
    if pid == 0:  # the peer: take each message after 1 ms, answer 1 ms later
        a.close()
        for _ in range(rounds):
            time.sleep(0.001)
            b.recv(100)
            time.sleep(0.001)
            b.send(b"r" * 8)
        os._exit(0)
    b.close()
    p = select.poll()
    p.register(a, select.POLLIN)
    for rep in range(args.reps):
        for how in ("blocking recv", "poll(POLLIN), then recv"):
            v = vcsw()
            for _ in range(args.n):
                a.send(b"x" * 8)
                if how.startswith("poll"):
                    p.poll()
                a.recv(100)
            print(f"  rep {rep}: {how}: {(vcsw() - v) / args.n:.2f} voluntary context "
                  "switches per exchange")
    os.waitpid(pid, 0)
    print("load average %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
