import { Type, type Static } from '@sinclair/typebox';
import { TitanError } from '../../pkg/model/errors.js';
import { permissionsOf, TOKEN_ROLES } from '../../pkg/model/token.js';
import { defineRoute, type RouteSpec } from './route.js';

export const WhoamiSchema = Type.Object({
  id: Type.String({ description: 'the token id (titan token revoke <id>)' }),
  name: Type.String(),
  role: Type.Union(TOKEN_ROLES.map((r) => Type.Literal(r))),
  queues: Type.Union([Type.Array(Type.String()), Type.Null()], { description: 'the queues it is limited to; null: every queue' }),
  expiresAt: Type.Union([Type.Number(), Type.Null()], { description: 'epoch ms; null: never' }),
  permissions: Type.Array(Type.String(), { description: 'what the role allows: read, submit, manage-queues, manage-tokens' }),
});

/** What `GET /v1/whoami` answers: the caller's token without its hash, and what it may do. */
export type Whoami = Static<typeof WhoamiSchema>;

/** Lets a client (the dashboard) know whose token it holds and grey out what the role cannot do; the API checks every call regardless. */
export function whoamiRoutes(): RouteSpec[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/whoami',
      tag: 'tokens',
      summary: "The caller's token: id, name, role, queues and permissions (never its hash)",
      permission: 'read',
      response: WhoamiSchema,
      async handler({ token }): Promise<Whoami> {
        if (!token) throw new TitanError('Unauthenticated', 'this call needs an API token');
        return {
          id: token.id,
          name: token.name,
          role: token.role,
          queues: token.queues ?? null,
          expiresAt: token.expiresAt ?? null,
          permissions: [...permissionsOf(token.role)],
        };
      },
    }),
  ];
}
