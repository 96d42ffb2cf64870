/**
 * A JSON syntax checker that reports the first error's offset and a message that never quotes
 * the input (V8's JSON.parse messages embed a slice of the source, which may hold keys).
 */

/** First syntax error of `text` as JSON, or null when it is valid JSON. */
export function jsonSyntaxError(text: string): { offset: number; message: string } | null {
  let i = 0;
  const n = text.length;
  class Stop {
    constructor(readonly offset: number, readonly message: string) {}
  }
  const ws = (): void => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const what = (): string => (i >= n ? 'end of input' : /[\x21-\x7e]/.test(text[i]) ? `'${text[i]}'` : `character U+${text.charCodeAt(i).toString(16).padStart(4, '0')}`);
  const fail = (expected: string): never => {
    throw new Stop(Math.min(i, n), `JSON syntax error: ${expected} expected, found ${what()}`);
  };
  const string = (): void => {
    const start = i;
    i++; // opening quote
    while (i < n && text[i] !== '"') {
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('4 hex digits after \\u');
          i += 5;
          continue;
        }
        if (!'"\\/bfnrt'.includes(text[i] ?? '')) fail('an escape character');
      } else if (text.charCodeAt(i) < 0x20) {
        throw new Stop(i, 'JSON syntax error: control character inside a string (unterminated string?)');
      }
      i++;
    }
    if (i >= n) throw new Stop(start, 'JSON syntax error: unterminated string');
    i++;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(text[i] === '}' ? 'a key (trailing comma?)' : 'a "key" in double quotes');
        string();
        ws();
        if (text[i] !== ':') fail("':' after the key");
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail("',' or '}' after a property value");
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] === ']') fail('a value (trailing comma?)');
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail("',' or ']' after a list item");
      }
    }
    if (c === '"') return string();
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (!m) fail('a value');
    i += m![0].length;
  };
  try {
    value();
    ws();
    if (i < n) fail('end of input');
    return null;
  } catch (e) {
    if (e instanceof Stop) return { offset: e.offset, message: e.message };
    throw e;
  }
}
