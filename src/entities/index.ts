import { User } from './User.js';
import { Wallet } from './Wallet.js';
import { Auction } from './Auction.js';
import { Bid } from './Bid.js';
import { OutboxEvent } from './OutboxEvent.js';
import { DeadlineWakeup } from './DeadlineWakeup.js';
import { Product } from './Product.js';
import { Order } from './Order.js';
import { LedgerEntry } from './LedgerEntry.js';
import { JobState } from './JobState.js';
import { Payment } from './Payment.js';
import { PaymentIntent } from './PaymentIntent.js';
import { PaymentNotification } from './PaymentNotification.js';
import { Message } from './Message.js';
import { VipMembership } from './VipMembership.js';
import { VipReminder } from './VipReminder.js';

export { User, Wallet, Auction, Bid, OutboxEvent, DeadlineWakeup, Product, Order, LedgerEntry, JobState, Payment, PaymentIntent, PaymentNotification, VipMembership, VipReminder, Message };
export const entities = [User, Wallet, Auction, Bid, OutboxEvent, DeadlineWakeup, Product, Order, LedgerEntry, JobState, Payment, PaymentIntent, PaymentNotification, VipMembership, VipReminder, Message];
