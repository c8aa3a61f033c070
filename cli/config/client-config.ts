import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { CliError } from "../errors.js";

/** What `drive login` saves. */
export interface SavedConfig {
  server: string;
  token: string;
}

export interface Credentials {
  server: string;
  token: string;
}

/** $DRIVE_CONFIG, else $XDG_CONFIG_HOME/drive/config.json, else ~/.config/drive/config.json. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DRIVE_CONFIG) return env.DRIVE_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "drive", "config.json");
}

export async function loadConfig(env: NodeJS.ProcessEnv = process.env): Promise<Partial<SavedConfig>> {
  const file = configPath(env);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<SavedConfig>;
    return { server: parsed.server, token: parsed.token };
  } catch {
    throw new CliError("usage", `${file} is not valid JSON; run drive login again`);
  }
}

/** Writes the config readable by its owner only, atomically. */
export async function saveConfig(config: SavedConfig, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const file = configPath(env);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(config, null, 2) + "\n", { mode: 0o600 });
  await rename(tmp, file);
  return file;
}

/** Flags win over DRIVE_SERVER / DRIVE_TOKEN, which win over the config file. */
export async function resolveCredentials(
  flags: { server?: string; token?: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<Credentials> {
  const saved = await loadConfig(env);
  const server = flags.server ?? env.DRIVE_SERVER ?? saved.server;
  const token = flags.token ?? env.DRIVE_TOKEN ?? saved.token;
  if (!server) throw new CliError("usage", "no server: run drive login --server URL --token TOKEN, or set DRIVE_SERVER");
  if (!token) throw new CliError("usage", "no token: run drive login, or set DRIVE_TOKEN");
  return { server: normaliseServer(server), token };
}

export function normaliseServer(server: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new CliError("usage", `server ${JSON.stringify(server)} is not a URL (like http://127.0.0.1:7070)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new CliError("usage", `server must be http:// or https://, not ${url.protocol}`);
  return url.origin;
}
