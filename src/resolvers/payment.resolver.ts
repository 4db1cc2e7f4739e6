import { Args, Ctx, Query, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { requireAdmin, requireUser, type Context } from '../context.js';
import { channelOf, revivePayment, type DomainEvents } from '../events/types.js';
import { PaymentsArgs } from '../schema/order-inputs.js';
import { Payment, PaymentConnection } from '../schema/payment-types.js';

type Data<A> = SubscribeResolverData<unknown, A, Context>;

/** Payments: admins see all (and hear those kept for a refund); owners see their orders' payments. */
@Resolver(() => Payment)
export class PaymentResolver {
  @Query(() => PaymentConnection, { description: "Newest first; admins see every payment, users their own orders' payments" })
  async payments(@Args() args: PaymentsArgs, @Ctx() ctx: Context): Promise<PaymentConnection> {
    const user = requireUser(ctx);
    return ctx.services.payments.list(ctx.em, user, args.filter ?? {}, args.first, args.after);
  }

  @Subscription(() => Payment, {
    description: 'Admins: a payment a provider took that could not pay its order (it needs a refund)',
    subscribe: ({ context }: Data<Record<string, never>>) => {
      requireAdmin(context);
      return context.services.bus.iterate(channelOf('PAYMENT_NEEDS_REFUND'));
    },
  })
  paymentNeedsRefund(@Root() event: DomainEvents['PAYMENT_NEEDS_REFUND']): Payment {
    return revivePayment(event.payment);
  }
}
