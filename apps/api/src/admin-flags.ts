import { z } from 'zod';
import { MEMORY_MODES } from '@memfleet/config/load-config';
import type { FlagPatch } from '@memfleet/flags/flags';

const mode = z
  .enum(MEMORY_MODES, { error: `must be one of ${MEMORY_MODES.join(', ')}, or null` })
  .nullable()
  .optional();
const PERCENT = 'must be an integer 0..100, or null';
const percent = z
  .number({ error: PERCENT })
  .int(PERCENT)
  .min(0, PERCENT)
  .max(100, PERCENT)
  .nullable()
  .optional();

/**
 * Body of `PUT /v1/admin/flags`: every field optional, `null` removes an override; tenants must be
 * ones `MEMFLEET_API_KEYS` names.
 */
export function flagsPatchSchema(tenants: readonly string[]) {
  const known = new Set(tenants);
  return z
    .object({
      mode,
      canary_percent: percent,
      tenants: z
        .record(z.string(), z.object({ mode, canary_percent: percent }).strict().nullable())
        .superRefine((byTenant, ctx) => {
          for (const tenant of Object.keys(byTenant)) {
            if (!known.has(tenant)) {
              ctx.addIssue({ code: 'custom', path: [tenant], message: 'unknown tenant' });
            }
          }
        })
        .optional(),
      downgrade: z.null({ error: 'can only be null (clears the read downgrade)' }).optional(),
    })
    .strict();
}
export type FlagsPatchBody = z.infer<ReturnType<typeof flagsPatchSchema>>;

/** The {@link FlagPatch} a validated body asks for. */
export function toFlagPatch(body: FlagsPatchBody): FlagPatch {
  return {
    ...(body.mode !== undefined ? { mode: body.mode } : {}),
    ...(body.canary_percent !== undefined ? { canaryPercent: body.canary_percent } : {}),
    ...(body.tenants !== undefined
      ? {
          tenants: Object.fromEntries(
            Object.entries(body.tenants).map(([tenant, o]) => [
              tenant,
              o === null
                ? null
                : {
                    ...(o.mode !== undefined ? { mode: o.mode } : {}),
                    ...(o.canary_percent !== undefined ? { canaryPercent: o.canary_percent } : {}),
                  },
            ]),
          ),
        }
      : {}),
    ...(body.downgrade === null ? { downgrade: null } : {}),
  };
}
