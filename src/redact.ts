/**
 * `scheme://user:password@` → `scheme://user:***@`. The password runs to the last `@` of the word, as
 * a URL parser would read it (an unencoded `@` in a password is common), and stops at a quote or a
 * backslash so the text of a JSON log line stays JSON.
 */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/?#@"'\\]*:)[^\s"'\\]*@/gi;

/** Masks the password of every URL in `text` (a ConfigError message, a log line). */
export function maskUrlPasswords(text: string): string {
  return text.replace(URL_PASSWORD, '$1***@');
}

/** A password shorter than this is not looked for on its own: masking every "ab" would garble the logs. */
const MIN_LITERAL = 4;

function passwordOf(raw: string | undefined): string[] {
  if (!raw) return [];
  try {
    const { password } = new URL(raw);
    if (!password) return [];
    let decoded = password;
    try {
      decoded = decodeURIComponent(password);
    } catch {
      // not percent-encoded as it should be: only the raw form can appear
    }
    return [password, decoded];
  } catch {
    return [];
  }
}

/** The configured secrets (a Config has them); named here so config.ts, which masks its errors with this file, is not imported back. */
export interface Secrets {
  databaseUrl?: string;
  redisUrl?: string;
  agendaMongoUrl?: string;
  jwtSecret?: string;
}

/**
 * What a log line must never show: URL passwords wherever they appear, and the configured ones
 * (DATABASE_URL, REDIS_URL, AGENDA_MONGO_URL) and JWT_SECRET even outside a URL — ioredis puts the
 * password of a refused AUTH in its error's `command.args`, which the start-up failure logged whole.
 * Works on the serialised line (pino's `streamWrite` hook): each literal is also looked for in its
 * JSON-escaped form, and replaced by text that needs no escaping.
 */
export function redactor(config: Secrets): (line: string) => string {
  const literals = new Set<string>();
  for (const secret of [...passwordOf(config.databaseUrl), ...passwordOf(config.redisUrl), ...passwordOf(config.agendaMongoUrl), config.jwtSecret ?? '']) {
    if (secret.length < MIN_LITERAL) continue;
    literals.add(secret);
    literals.add(JSON.stringify(secret).slice(1, -1));
  }
  // Longest first: a password that contains another is replaced whole.
  const ordered = [...literals].sort((a, b) => b.length - a.length);
  return (line) => {
    let out = maskUrlPasswords(line);
    for (const literal of ordered) if (out.includes(literal)) out = out.replaceAll(literal, '***');
    return out;
  };
}
