import type { MemoryMode } from '@memfleet/config/load-config';
import type { FlagSnapshot } from './flags.ts';

/** The flags as `GET /v1/admin/flags` and `pnpm flags` show them (snake_case, ISO times). */
export interface FlagsView {
  mode: MemoryMode;
  canary_percent: number;
  tenants: Record<string, { mode?: MemoryMode; canary_percent?: number }>;
  downgrade: { reason: string; until: string } | null;
  source: 'env' | 'redis';
}

/** Renders a {@link FlagSnapshot} for people and HTTP clients. */
export function toFlagsView(s: FlagSnapshot): FlagsView {
  return {
    mode: s.mode,
    canary_percent: s.canaryPercent,
    tenants: Object.fromEntries(
      Object.entries(s.tenants).map(([tenant, o]) => [
        tenant,
        {
          ...(o.mode !== undefined ? { mode: o.mode } : {}),
          ...(o.canaryPercent !== undefined ? { canary_percent: o.canaryPercent } : {}),
        },
      ]),
    ),
    downgrade:
      s.downgrade === undefined
        ? null
        : { reason: s.downgrade.reason, until: new Date(s.downgrade.untilMs).toISOString() },
    source: s.source,
  };
}
