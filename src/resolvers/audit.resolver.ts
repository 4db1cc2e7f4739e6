import { Args, Ctx, Query, Resolver } from 'type-graphql';
import { requireAdmin, type Context } from '../context.js';
import { AuditEntryConnection, type AuditAction } from '../schema/audit-types.js';
import { ConnectionArgs } from '../schema/inputs.js';

/** The audit log of admin actions: admins only. */
@Resolver()
export class AuditResolver {
  @Query(() => AuditEntryConnection, { description: 'Admins: every admin mutation (one row each, committed with the action it records), newest first' })
  async auditLog(@Args() args: ConnectionArgs, @Ctx() ctx: Context): Promise<AuditEntryConnection> {
    requireAdmin(ctx);
    const page = await ctx.services.audit.list(ctx.em, args.first, args.after);
    return {
      pageInfo: page.pageInfo,
      edges: page.edges.map(({ cursor, node }) => ({
        cursor,
        node: { id: node.id, actorId: node.actorId, action: node.action as AuditAction, target: node.target, details: JSON.stringify(node.details), createdAt: node.createdAt },
      })),
    };
  }
}
