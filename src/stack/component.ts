import path from 'node:path';
import { StackPaths, StackSettings } from './settings';
import { Tools } from './tools';

export interface StackContext {
  settings: StackSettings;
  paths: StackPaths;
  tools: Tools;
  /** Progress lines for a person watching `lifeboat stack up`. */
  log: (line: string) => void;
}

export interface PortClaim {
  port: number;
  /** Environment variable that moves it. */
  env: string;
  what: string;
}

export interface ComponentHealth {
  healthy: boolean;
  detail: string;
}

/** One server of the embedded stack. `start` assumes its ports are free and waits until healthy. */
export interface StackComponent {
  readonly name: string;
  readonly endpoint: string;
  ports(): PortClaim[];
  /** True when the process this data directory started is alive (healthy or not). */
  isRunning(): boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): Promise<ComponentHealth>;
  /** Serving, even if not fully healthy: `up` then repairs it in place rather than restarting it. */
  accepting?(): Promise<boolean>;
}

export function pidFile(ctx: StackContext, name: string): string {
  return path.join(ctx.paths.run, `${name}.pid`);
}

export function logFile(ctx: StackContext, name: string): string {
  return path.join(ctx.paths.logs, `${name}.log`);
}
