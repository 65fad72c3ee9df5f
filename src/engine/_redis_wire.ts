/**
 * What the Redis engine stores and sends, as pure functions: key names,
 * the append script, and the reading of live messages and stream entries.
 *
 * Per path (`P` is `--engine-prefix`, the braces a Redis Cluster hash tag
 * so that one path's keys share a slot):
 * - `P{path}:meta`, a hash: `epoch` (the log's epoch), `seq` (the next
 *   sequence number) and `len` (the `--buffer` of the last instance that
 *   appended, which trims the stream to it);
 * - `P{path}:log`, a stream: entry `0-<seq+1>` holds the fields `d` (the
 *   payload), `k` (`t` text, `b` bytes), `e` (the epoch) and `n` (a nonce,
 *   random per append);
 * - `P{path}:live`, a Pub/Sub channel:
 *   `<epoch>:<seq>:<ms>:<nonce>:<k><payload>` for each event, `<ms>` the
 *   publishing instance's clock.
 *
 * One script appends: a missing meta hash means the log was lost or never
 * was, so it starts a new epoch (the caller's fresh one) and a new stream
 * (an epoch or a counter that is not one of ours, edited by hand, is
 * replaced the same way, but the stream stays and the numbering goes on
 * after it);
 * then it numbers the event, adds it with `MAXLEN ~`, refreshes the TTL and
 * publishes it. Redis runs it atomically, so every instance sees the same
 * ids in the same order, on the channel as in the stream.
 *
 * With `--history-ttl`, the stream expires that long after the last
 * append, the meta hash {@link META_TTL_EXTRA_SECONDS} later: the
 * numbering goes on in the same epoch after the history expired, so live
 * subscribers get no gap notice for events they all had, and a resume
 * from an expired id finds the stream missing what follows it (a gap
 * notice). A missing meta hash (Redis lost its data, or nothing was
 * published for that much longer) still starts a new epoch.
 *
 * The nonce tells a repeat from a new event under a used id: when Redis
 * loses its latest writes but keeps the epoch (a crash with AOF
 * `everysec`, a failover to a replica that lagged, an older backup), it
 * numbers new events with ids already handed out. The reader that sees
 * such an id with another nonce, or a resume from an id the log has not
 * reached, starts a new epoch with {@link BUMP_SCRIPT}, so those ids are
 * never reused and subscribers get a gap notice.
 *
 * @module
 */

import type { EventData, EventIdParts } from "../event.ts";

/** The keys and channel of one path. */
export interface PathKeys {
  /** The meta hash. */
  readonly meta: string;
  /** The stream. */
  readonly log: string;
  /** The Pub/Sub channel. */
  readonly live: string;
}

/**
 * Names one path's keys.
 *
 * @param prefix The key prefix (`--engine-prefix`).
 * @param path The path, without its leading slash.
 * @returns The keys.
 */
export function pathKeys(prefix: string, path: string): PathKeys {
  const base = `${prefix}{${path}}`;
  return { meta: `${base}:meta`, log: `${base}:log`, live: `${base}:live` };
}

/**
 * How much longer than the history (`--history-ttl`) a path's meta hash
 * (epoch and counter, a few bytes) is kept: 30 days.
 */
export const META_TTL_EXTRA_SECONDS = 30 * 86400;

/**
 * The append script. KEYS: meta, log. ARGV: payload, kind, a fresh epoch,
 * max length, TTL in seconds (0: none), channel, the time in ms.
 * Returns `{epoch, seq}`.
 */
export const APPEND_SCRIPT = `
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'len', 'seq')
local epoch = meta[1]
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
elseif #epoch > 32 or not string.find(epoch, '^[0-9a-z]+$') or
    not string.find(meta[3] or '', '^%d+$') or #meta[3] > 15 then
  -- Not an epoch or a counter of ours (the hash edited by hand): its ids
  -- would not parse, on the channel or on resume, or the counter would
  -- not count. A new epoch, after the stream's last entry.
  local next = 0
  local info = redis.pcall('XINFO', 'STREAM', KEYS[2])
  if type(info) == 'table' and not info.err then
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        next = tonumber(string.match(info[i + 1], '^0%-(%d+)$') or '0')
      end
    end
  end
  epoch = ARGV[3]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', next)
end
if meta[2] ~= ARGV[4] then
  redis.call('HSET', KEYS[1], 'len', ARGV[4])
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1) - 1
local added = redis.pcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4],
  '0-' .. string.format('%d', seq + 1), 'd', ARGV[1], 'k', ARGV[2],
  'e', epoch, 'n', ARGV[3])
if type(added) == 'table' and added.err and
    string.find(added.err, 'WRONGTYPE', 1, true) then
  -- Not a stream at the log's key (someone else's key): nothing stored, so
  -- the number is given back and the append fails.
  redis.call('HINCRBY', KEYS[1], 'seq', -1)
  return added
end
if type(added) == 'table' and added.err then
  -- The counter is behind the stream (meta restored without it): ids would
  -- repeat, so go on after the stream's last id, in a new epoch.
  local info = redis.call('XINFO', 'STREAM', KEYS[2])
  local top = '0-0'
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then top = info[i + 1] end
  end
  seq = tonumber(string.match(top, '^0%-(%d+)$') or '0')
  epoch = ARGV[3]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', seq + 1)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4],
    '0-' .. string.format('%d', seq + 1), 'd', ARGV[1], 'k', ARGV[2],
    'e', epoch, 'n', ARGV[3])
end
if ARGV[5] ~= '0' then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]) + ${META_TTL_EXTRA_SECONDS})
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
redis.call('PUBLISH', ARGV[6], epoch .. ':' .. string.format('%d', seq) ..
  ':' .. ARGV[7] .. ':' .. ARGV[3] .. ':' .. ARGV[2] .. ARGV[1])
return {epoch, seq}
`;

/**
 * Starts a new epoch for a log that went back in time. KEYS: meta. ARGV:
 * the epoch seen to go back, a fresh epoch. Only when the log is still in
 * the old one (several instances may notice at once); the sequence goes on,
 * so stream ids keep growing. Returns the epoch now in force.
 */
export const BUMP_SCRIPT = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if epoch == ARGV[1] then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[2])
  return ARGV[2]
end
return epoch
`;

/** One event read from Redis. */
export interface WireEvent {
  /** Its id. */
  readonly id: EventIdParts;
  /** Its payload. */
  readonly data: EventData;
  /** When it was appended (the publisher's clock, ms), or NaN where unknown. */
  readonly time: number;
  /** Random per append; "" where unknown. */
  readonly nonce: string;
}

const DECODER = new TextDecoder();
const COLON = 0x3a;

/** The payload kind stored beside it: `t` text, `b` bytes. */
export function kindOf(data: EventData): "t" | "b" {
  return typeof data === "string" ? "t" : "b";
}

function payload(kind: number, bytes: Uint8Array): EventData {
  // A copy for bytes, a plain Uint8Array of its own: the client hands out
  // Buffers, views of the chunk it read, and Buffer's slice() is a view too
  // (it would keep the whole chunk alive as long as the event is buffered).
  return kind === 0x62 /* b */ ? new Uint8Array(bytes) : DECODER.decode(bytes);
}

/** The head of a live message: everything but its payload. */
export interface LiveHead {
  /** Its id. */
  readonly id: EventIdParts;
  /** When it was appended (the publisher's clock, ms), or NaN. */
  readonly time: number;
  /** Random per append. */
  readonly nonce: string;
  /** Where the kind byte is; the payload follows it. */
  readonly kindAt: number;
}

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const LOWER_A = 0x61;
const LOWER_Z = 0x7a;
/** Longest seq accepted: 16 digits, as many as a safe integer may need. */
const SEQ_DIGITS = 16;

/** The ASCII text of `bytes[from, to)`, or undefined when it is not ASCII. */
function asciiOf(
  bytes: Uint8Array,
  from: number,
  to: number,
): string | undefined {
  let text = "";
  for (let i = from; i < to; i++) {
    const byte = bytes[i];
    if (byte > 0x7f) return undefined;
    text += String.fromCharCode(byte);
  }
  return text;
}

/**
 * Reads the head of a live message (epoch, seq, time, nonce) without its
 * payload, in one pass over its bytes: a repeat can be told and dropped
 * before its payload is copied or decoded.
 *
 * @param message The message as published by the append script.
 * @returns The head, or undefined when the message is not one of ours.
 */
export function parseLiveHead(message: Uint8Array): LiveHead | undefined {
  const length = message.length;
  // <epoch>: 1 to 32 of [0-9a-z]
  let i = 0;
  let epoch = "";
  for (; i < length && i <= 32; i++) {
    const byte = message[i];
    if (byte === COLON) break;
    if (
      !(byte >= DIGIT_0 && byte <= DIGIT_9) &&
      !(byte >= LOWER_A && byte <= LOWER_Z)
    ) return undefined;
    epoch += String.fromCharCode(byte);
  }
  if (i === 0 || i > 32 || message[i] !== COLON) return undefined;
  // <seq>: 0, or up to 16 digits without a leading zero
  const seqAt = ++i;
  let seq = 0;
  for (; i < length && message[i] !== COLON; i++) {
    const byte = message[i];
    if (byte < DIGIT_0 || byte > DIGIT_9) return undefined;
    seq = seq * 10 + (byte - DIGIT_0);
  }
  const digits = i - seqAt;
  if (
    i >= length || digits === 0 || digits > SEQ_DIGITS ||
    (digits > 1 && message[seqAt] === DIGIT_0) || !Number.isSafeInteger(seq)
  ) return undefined;
  // <ms>: digits (anything else reads as NaN, as Number() would)
  const timeAt = ++i;
  let time = 0;
  for (; i < length && message[i] !== COLON; i++) {
    const byte = message[i];
    time = byte >= DIGIT_0 && byte <= DIGIT_9
      ? time * 10 + (byte - DIGIT_0)
      : NaN;
  }
  if (i >= length) return undefined;
  if (i === timeAt) time = 0;
  // <nonce>
  const nonceAt = ++i;
  while (i < length && message[i] !== COLON) i++;
  // <k>, then at least nothing: "t" with an empty payload is an empty text
  const kindAt = i + 1;
  if (kindAt >= length) return undefined;
  const kind = message[kindAt];
  if (kind !== 0x74 && kind !== 0x62) return undefined;
  const nonce = asciiOf(message, nonceAt, i) ??
    DECODER.decode(message.subarray(nonceAt, i));
  return { id: { epoch, seq }, time, nonce, kindAt };
}

/**
 * The payload of a live message whose head was read.
 *
 * @param message The message.
 * @param head Its head, from {@link parseLiveHead}.
 * @returns Text, or a copy of the bytes.
 */
export function liveData(message: Uint8Array, head: LiveHead): EventData {
  return payload(message[head.kindAt], message.subarray(head.kindAt + 1));
}

/**
 * Reads a live message.
 *
 * @param message The message as published by the append script.
 * @returns The event, or undefined when the message is not one of ours.
 */
export function parseLiveMessage(message: Uint8Array): WireEvent | undefined {
  const head = parseLiveHead(message);
  if (head === undefined) return undefined;
  return {
    id: head.id,
    data: liveData(message, head),
    time: head.time,
    nonce: head.nonce,
  };
}

/**
 * Reads the sequence number from a stream entry id `0-<seq+1>`.
 *
 * @param id The entry id.
 * @returns The sequence number, or undefined for an id we did not write.
 */
export function seqOfEntryId(id: string): number | undefined {
  const match = /^0-([1-9][0-9]{0,15})$/.exec(id);
  if (match === null) return undefined;
  const seq = Number(match[1]) - 1;
  return Number.isSafeInteger(seq) ? seq : undefined;
}

/**
 * The stream entry id of a sequence number.
 *
 * @param seq The sequence number.
 * @returns `0-<seq+1>`.
 */
export function entryIdOf(seq: number): string {
  return `0-${seq + 1}`;
}

/** A reply's bulk string as text, whether the client gave bytes or text. */
function textOf(value: unknown): string {
  return value instanceof Uint8Array ? DECODER.decode(value) : String(value);
}

/**
 * Reads an `XRANGE` reply (bulk strings as bytes).
 *
 * @param reply The reply.
 * @returns The events, skipping entries that are not ours.
 */
export function parseRange(reply: unknown): WireEvent[] {
  const events: WireEvent[] = [];
  if (!Array.isArray(reply)) return events;
  for (const entry of reply) {
    if (!Array.isArray(entry) || entry.length < 2) continue;
    const seq = seqOfEntryId(textOf(entry[0]));
    const fields = entry[1];
    if (seq === undefined || !Array.isArray(fields)) continue;
    let data: Uint8Array | undefined;
    let kind: number | undefined;
    let epoch: string | undefined;
    let nonce = "";
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = textOf(fields[i]);
      const value = fields[i + 1] as Uint8Array;
      if (name === "d") data = value;
      else if (name === "k") kind = value[0];
      else if (name === "e") epoch = DECODER.decode(value);
      else if (name === "n") nonce = DECODER.decode(value);
    }
    if (data === undefined || kind === undefined || epoch === undefined) {
      continue;
    }
    events.push({
      id: { epoch, seq },
      data: payload(kind, data),
      time: NaN,
      nonce,
    });
  }
  return events;
}
