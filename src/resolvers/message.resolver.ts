import { Arg, Args, Ctx, ID, Int, Mutation, Query, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { requireUser, type Context } from '../context.js';
import { channelOf, reviveMessage, type DomainEvents } from '../events/types.js';
import { Message, MessageConnection, MessagesArgs } from '../schema/message-types.js';

type Data<A> = SubscribeResolverData<unknown, A, Context>;

/** Thin: every caller, admins included, reads, marks and hears only their own messages. */
@Resolver(() => Message)
export class MessageResolver {
  @Query(() => MessageConnection, { description: "The caller's messages, newest first, with cursor pagination" })
  async messages(@Args() args: MessagesArgs, @Ctx() ctx: Context): Promise<MessageConnection> {
    const user = requireUser(ctx);
    return ctx.services.messages.list(ctx.em, user, { unreadOnly: args.unreadOnly }, args.first, args.after);
  }

  @Query(() => Int, { description: "How many of the caller's messages are unread" })
  async unreadMessageCount(@Ctx() ctx: Context): Promise<number> {
    const user = requireUser(ctx);
    return ctx.services.messages.unreadCount(ctx.em, user);
  }

  @Mutation(() => Message, { description: "One of the caller's messages, read (marking it again keeps the first readAt); another's id is NOT_FOUND" })
  async markMessageRead(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<Message> {
    const user = requireUser(ctx);
    return ctx.services.tx.run((uow) => ctx.services.messages.markRead(uow, user, id));
  }

  @Mutation(() => Int, { description: "Marks every unread message of the caller's read; returns how many it marked" })
  async markAllMessagesRead(@Ctx() ctx: Context): Promise<number> {
    const user = requireUser(ctx);
    return ctx.services.tx.run((uow) => ctx.services.messages.markAllRead(uow, user));
  }

  @Subscription(() => Message, {
    description: "Every new message to the caller (admins too hear only their own)",
    // Published per user (`MESSAGE_RECEIVED:<userId>`): the channel is the authorisation, no filter.
    subscribe: ({ context }: Data<Record<string, never>>) => {
      const user = requireUser(context);
      return context.services.bus.iterate(channelOf('MESSAGE_RECEIVED', user.id));
    },
  })
  messageReceived(@Root() event: DomainEvents['MESSAGE_RECEIVED']): Message {
    return reviveMessage(event.message);
  }
}
