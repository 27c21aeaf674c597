import { randomBytes } from 'node:crypto';

// Crockford base32, lowercase: sortable as strings, no ambiguous letters.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const TIME_CHARS = 9; // 45 bits of milliseconds: good until the year 3084
const RANDOM_CHARS = 4;

let lastTime = -1;
let lastRandom = 0;

function encode(value: number, chars: number): string {
  let out = '';
  for (let i = 0; i < chars; i++) {
    out = ALPHABET[value % 32] + out;
    value = Math.floor(value / 32);
  }
  return out;
}

/**
 * A short id that sorts by creation time: 9 characters of milliseconds and
 * 4 of randomness. Within one millisecond the random part counts up, so ids
 * made by one process are strictly increasing.
 */
export function newJobId(now: number = Date.now()): string {
  if (now <= lastTime) {
    now = lastTime;
    lastRandom = (lastRandom + 1) % 32 ** RANDOM_CHARS;
    if (lastRandom === 0) now = lastTime = lastTime + 1;
  } else {
    lastTime = now;
    lastRandom = randomBytes(4).readUInt32BE(0) % (32 ** RANDOM_CHARS / 2);
  }
  return encode(now, TIME_CHARS) + encode(lastRandom, RANDOM_CHARS);
}

/**
 * A job id: newJobId's 13 characters, or an array task's (pkg/model/array.ts:
 * the array's id, `-` and a 6-digit index, as arrayTaskId makes it).
 */
export const JOB_ID_PATTERN = /^[0-9a-hjkmnp-tv-z]{13}(-[0-9]{6})?$/;
