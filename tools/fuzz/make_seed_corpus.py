#!/usr/bin/env python3
"""Writes the seed corpora under testing/fuzz/corpus/<target>/.

Seeds are real requests: what the golden wire scripts (testing/golden/*.txt)
send, one file per script, plus one request of every text and meta command
and one binary frame of every opcode. Long repeats in the scripts are capped
so every seed stays under the fuzzers' -max_len (run_fuzzers.sh).

The connection target's seeds start with its options byte (see
testing/fuzz/connection_fuzzer.cc): most send in one write, some cut the
stream into small chunks or use 64-byte pool buffers.

Usage: tools/fuzz/make_seed_corpus.py [--repo=DIR]   (rewrites the seeds; a
file whose name starts with "crash-" or "regression-" is left alone)
"""

import argparse
import hashlib
import os
import re
import struct

MAX_SEED = 4096
MAX_REPEAT_BYTES = 2200  # still past the 2048-byte line limit

ESCAPES = {'r': b'\r', 'n': b'\n', 't': b'\t', '0': b'\0', 's': b' ',
           '\\': b'\\', '{': b'{', '}': b'}'}


def unescape(text):
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == '\\' and i + 1 < len(text):
            n = text[i + 1]
            if n == 'x':
                out += bytes([int(text[i + 2:i + 4], 16)])
                i += 4
                continue
            out += ESCAPES.get(n, n.encode())
            i += 2
            continue
        out += c.encode('latin-1')
        i += 1
    return bytes(out)


def expand(payload):
    """Expands {N*text}, {name}, {now+N} in a '>' payload."""
    out = bytearray()
    pos = 0
    for m in re.finditer(r'\{(\d+)\*((?:\\.|[^}\\])*)\}|\{([^}]*)\}', payload):
        out += unescape(payload[pos:m.start()])
        pos = m.end()
        if m.group(1) is not None:
            text = unescape(m.group(2))
            n = int(m.group(1))
            n = min(n, max(1, MAX_REPEAT_BYTES // max(1, len(text))))
            out += text * n
        else:
            name = m.group(3)
            if name.startswith('now'):
                delta = name[3:]
                out += str(1700000000 + (int(delta) if delta else 0)).encode()
            else:
                out += b'1'
    out += unescape(payload[pos:])
    return bytes(out)


def script_sends(path):
    sends = bytearray()
    with open(path, encoding='latin-1') as f:
        for line in f:
            line = line.rstrip('\n').rstrip()
            if not line.startswith('>'):
                continue
            payload = line[1:]
            if payload.startswith(' '):
                payload = payload[1:]
            sends += expand(payload)
    return bytes(sends[:MAX_SEED])


TEXT_COMMANDS = [
    b'get foo\r\n', b'get a b c\r\n', b'gets foo\r\n', b'bget foo\r\n',
    b'gat 100 foo bar\r\n', b'gats 0 foo\r\n', b'gat 10\r\n',
    b'set foo 5 0 3\r\nbar\r\n', b'set foo 0 0 3 noreply\r\nbar\r\n',
    b'add foo 0 100 1\r\nx\r\n', b'replace foo 1 -1 2\r\nxy\r\n',
    b'append foo 0 0 2\r\nzz\r\n', b'prepend foo 0 0 2\r\naa\r\n',
    b'cas foo 0 0 3 12\r\nnew\r\n', b'cas foo 0 0 3 12 noreply\r\nnew\r\n',
    b'delete foo\r\n', b'delete foo 0\r\n', b'delete foo noreply\r\n',
    b'incr n 5\r\n', b'decr n 18446744073709551615\r\n', b'incr n 1 noreply\r\n',
    b'touch foo 100\r\n', b'flush_all\r\n', b'flush_all 10\r\n',
    b'flush_all noreply\r\n', b'version\r\n', b'verbosity 1\r\n',
    b'verbosity 1 noreply\r\n', b'stats\r\n', b'stats settings\r\n',
    b'stats items\r\n', b'stats slabs\r\n', b'stats detail on\r\n',
    b'stats reset\r\n', b'stats sizes\r\n', b'cache_memlimit 100\r\n',
    b'cache_memlimit 1\r\n', b'quit\r\n',
    b'set big 0 0 1001\r\n' + b'x' * 1001 + b'\r\n',
    b'set k 0 0 3\r\nabcd\r\n', b'get ' + b'k' * 251 + b'\r\n',
    b'get ' + b'k ' * 1100 + b'\r\n', b'\r\n', b'\n', b'bogus\r\n',
    b'set k 0 0 -1\r\n', b'get a\0b\r\n', b'get a\r\r\n',
]

META_COMMANDS = [
    b'mn\r\n', b'mg foo v\r\n', b'mg foo s v f t c k l h O123 q\r\n',
    b'mg foo T30 N30 R10 u\r\n', b'mg Zm9v b v k\r\n',
    b'ms foo 3 T0 F5\r\nbar\r\n', b'ms foo 3 MA\r\nbar\r\n',
    b'ms foo 3 ME C5 I q\r\nbar\r\n', b'ms foo 3 MR c b\r\nbar\r\n',
    b'ms foo 2000\r\n', b'ms foo S3\r\nbar\r\n',
    b'md foo\r\n', b'md foo q I T30 C1 O9\r\n', b'md Zm9v b k\r\n',
    b'ma n\r\n', b'ma n MD D5 v N0 J10 t c\r\n', b'ma n M+ q O1\r\n',
    b'me foo\r\n', b'me Zm9v b\r\n', b'mx foo\r\n', b'mg\r\n',
    b'mg foo v v\r\n', b'mg foo !\r\n', b'mg foo O' + b'o' * 40 + b'\r\n',
    b'mg foo ' + b'v ' * 20 + b'\r\n', b'ms foo 3 MX\r\nbar\r\n',
    b'mg foo v\r\nget foo\r\nmn\r\n',
]


def frame(opcode, extras=b'', key=b'', value=b'', opaque=0x01020304, cas=0,
          magic=0x80, body=None):
    body_length = len(extras) + len(key) + len(value) if body is None else body
    header = struct.pack('>BBHBBHIIQ', magic, opcode, len(key), len(extras), 0,
                         0, body_length, opaque, cas)
    return header + extras + key + value


def binary_frames():
    se = struct.pack('>II', 5, 0)  # flags, expiration
    arith = struct.pack('>QQI', 3, 10, 0)
    exp = struct.pack('>I', 100)
    frames = {
        'get': frame(0x00, key=b'foo'), 'set': frame(0x01, se, b'foo', b'bar'),
        'add': frame(0x02, se, b'foo', b'bar'),
        'replace': frame(0x03, se, b'foo', b'baz'),
        'delete': frame(0x04, key=b'foo'),
        'increment': frame(0x05, arith, b'n'),
        'decrement': frame(0x06, arith, b'n'), 'quit': frame(0x07),
        'flush': frame(0x08), 'flush_delay': frame(0x08, exp),
        'getq': frame(0x09, key=b'foo'), 'noop': frame(0x0a),
        'version': frame(0x0b), 'getk': frame(0x0c, key=b'foo'),
        'getkq': frame(0x0d, key=b'foo'),
        'append': frame(0x0e, key=b'foo', value=b'++'),
        'prepend': frame(0x0f, key=b'foo', value=b'--'),
        'stat': frame(0x10), 'stat_key': frame(0x10, key=b'settings'),
        'setq': frame(0x11, se, b'foo', b'bar'),
        'addq': frame(0x12, se, b'foo', b'bar'),
        'replaceq': frame(0x13, se, b'foo', b'bar'),
        'deleteq': frame(0x14, key=b'foo'),
        'incrementq': frame(0x15, arith, b'n'),
        'decrementq': frame(0x16, arith, b'n'), 'quitq': frame(0x17),
        'flushq': frame(0x18), 'appendq': frame(0x19, key=b'foo', value=b'a'),
        'prependq': frame(0x1a, key=b'foo', value=b'p'),
        'verbosity': frame(0x1b, exp), 'touch': frame(0x1c, exp, b'foo'),
        'gat': frame(0x1d, exp, b'foo'), 'gatq': frame(0x1e, exp, b'foo'),
        'sasl_list_mechs': frame(0x20),
        'sasl_auth': frame(0x21, key=b'PLAIN', value=b'\0user\0pass'),
        'sasl_auth_bad': frame(0x21, key=b'PLAIN', value=b'\0user\0nope'),
        'sasl_step': frame(0x22, key=b'PLAIN', value=b'x'),
        'gatk': frame(0x23, exp, b'foo'), 'gatkq': frame(0x24, exp, b'foo'),
        'unknown_opcode': frame(0x42, key=b'k', value=b'v'),
        'too_large': frame(0x01, se, b'big', b'x' * 1001),
        'key_too_long': frame(0x00, key=b'k' * 251),
        'body_too_short': frame(0x00, key=b'foo', body=2),
        'bad_magic': frame(0x00, key=b'foo', magic=0x81),
        'huge_body': frame(0x01, se, b'foo', body=0xffffffff),
    }
    return frames


def write(directory, name, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), 'wb') as f:
        f.write(data[:MAX_SEED])


def clear(directory):
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        if not name.startswith(('crash-', 'regression-')):
            os.remove(os.path.join(directory, name))


def short_name(data):
    return hashlib.sha1(data).hexdigest()[:12]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--repo', default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), '..', '..'))
    args = parser.parse_args()
    repo = os.path.abspath(args.repo)
    corpus = os.path.join(repo, 'testing', 'fuzz', 'corpus')
    dirs = {t: os.path.join(corpus, t) for t in
            ('text_parser', 'meta_parser', 'binary_parser', 'connection')}
    for d in dirs.values():
        clear(d)

    golden = os.path.join(repo, 'testing', 'golden')
    scripts = sorted(f for f in os.listdir(golden) if f.endswith('.txt'))
    text_seeds, meta_seeds = [], []
    for script in scripts:
        sends = script_sends(os.path.join(golden, script))
        if not sends:
            continue
        name = 'golden_' + script[:-4]
        (meta_seeds if script.startswith('meta_') else text_seeds).append(
            (name, sends))
    text_seeds.append(('commands', b''.join(TEXT_COMMANDS[:-8])))
    for i, command in enumerate(TEXT_COMMANDS):
        text_seeds.append(('command_%02d' % i, command))
    meta_seeds.append(('commands', b''.join(META_COMMANDS)))
    for i, command in enumerate(META_COMMANDS):
        meta_seeds.append(('command_%02d' % i, command))

    for name, data in text_seeds:
        write(dirs['text_parser'], name, data)
    for name, data in meta_seeds:
        write(dirs['meta_parser'], name, data)
    frames = binary_frames()
    for name, data in frames.items():
        write(dirs['binary_parser'], name, data)
    pipeline = b''.join(frames[n] for n in (
        'set', 'get', 'getk', 'getq', 'add', 'replace', 'append', 'prepend',
        'increment', 'decrement', 'touch', 'gat', 'gatk', 'delete', 'getkq',
        'noop', 'version', 'stat', 'verbosity', 'flush', 'quit'))
    write(dirs['binary_parser'], 'pipeline', pipeline)

    # Connection: options byte 0x00 sends in one write; 0x03 cycles chunk
    # sizes 1, 7, 64; 0x20 uses 64-byte pool buffers; 0x10 closes outright.
    conn = dirs['connection']
    for name, data in text_seeds + meta_seeds:
        if not name.startswith('command_'):
            write(conn, name, b'\x00' + data)
    write(conn, 'text_chunked', b'\x03\x00\x06\x3f' +
          b''.join(TEXT_COMMANDS[:-8]))
    write(conn, 'meta_small_buffers', b'\x20' + b''.join(META_COMMANDS))
    write(conn, 'meta_chunked_small_buffers', b'\x23\x00\x06\x3f' +
          b''.join(META_COMMANDS))
    write(conn, 'text_abrupt_close', b'\x10' + b''.join(TEXT_COMMANDS[:12]))
    write(conn, 'binary_pipeline', b'\x00' + pipeline)
    write(conn, 'binary_pipeline_chunked', b'\x02\x00\x17' + pipeline)
    write(conn, 'binary_small_buffers', b'\x20' + pipeline)
    for name in ('too_large', 'unknown_opcode', 'sasl_auth', 'key_too_long',
                 'body_too_short', 'huge_body'):
        write(conn, 'binary_' + name, b'\x00' + frames['set'] + frames[name] +
              frames['get'])
    # 0x40: authentication on (user "user", password "pass").
    write(conn, 'text_auth', b'\x40set a 0 0 9\r\nuser pass\r\nget a\r\n'
          b'set a 0 0 9\r\nuser bad!\r\n' + b''.join(TEXT_COMMANDS[:12]))
    write(conn, 'text_auth_refused', b'\x40get a\r\nset a 0 0 9\r\nus')
    write(conn, 'binary_auth', b'\x40' + frames['sasl_list_mechs'] +
          frames['sasl_auth'] + pipeline)
    write(conn, 'binary_auth_refused', b'\x40' + frames['get'] +
          frames['sasl_auth'])
    write(conn, 'binary_auth_bad', b'\x40' + frames['sasl_auth_bad'] +
          frames['get'])
    write(conn, 'empty', b'')


if __name__ == '__main__':
    main()
