"""A word-count pipeline written for concurrent.interpreters (PEP 734).

main --lines--> [tokenise] --words--> [count] --counts--> main

Each stage runs in its own interpreter and reaches its queues by id
(Queue(qid)), as code in another interpreter does.  A bad word makes the
counting stage raise; the exception crosses back as ExecutionFailed.
"""
import importlib
import sys

interpreters = importlib.import_module(sys.argv[1])

TOKENISE = """
from {mod} import Queue
inq, outq = Queue(in_id), Queue(out_id)
while (line := inq.get()) is not None:
    outq.put(tuple(line.lower().split()))
outq.put(None)
"""

COUNT = """
from {mod} import Queue
inq, outq = Queue(in_id), Queue(out_id)
counts = {{}}
while (words := inq.get()) is not None:
    for word in words:
        if word == "boom":
            raise ValueError(f"bad word: {{word!r}}")
        counts[word] = counts.get(word, 0) + 1
outq.put(tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))))
"""


def run(text):
    lines = interpreters.create_queue()
    words = interpreters.create_queue(maxsize=2)
    counts = interpreters.create_queue()
    tokenise = interpreters.create()
    count = interpreters.create()
    try:
        tokenise.prepare_main(in_id=lines.id, out_id=words.id)
        count.prepare_main(in_id=words.id, out_id=counts.id)
        src = TOKENISE.format(mod=interpreters.__name__)
        t = tokenise.call_in_thread(exec, src)
        for line in text.splitlines():
            lines.put(line)
        lines.put(None)
        try:
            count.exec(COUNT.format(mod=interpreters.__name__))
        except interpreters.ExecutionFailed as exc:
            info = exc.excinfo
            print(f"count failed: {info.type.__name__}: {info.msg}")
            while words.get() is not None:  # let tokenise finish
                pass
            return None
        finally:
            t.join()
        return counts.get(timeout=60)
    finally:
        tokenise.close()
        count.close()


TEXT = """the quick brown fox
jumps over the lazy dog
The dog sleeps"""

if __name__ == "__main__":
    for word, n in run(TEXT):
        print(word, n)
    print(run(TEXT + "\nboom goes the dynamite"))
    print(sorted(i.id for i in interpreters.list_all()) == [0])
