import { ArgsType, Field, ID, ObjectType } from 'type-graphql';
import { IsBoolean, IsOptional } from 'class-validator';
import { ConnectionArgs } from './inputs.js';
import { PageInfo } from './types.js';

@ObjectType({ description: 'An in-site message to one user (a VIP reminder, …); unread while readAt is null' })
export class Message {
  @Field(() => ID) id!: string;
  @Field(() => ID) userId!: string;
  @Field({ description: 'What it is about, e.g. VIP_REMINDER' }) kind!: string;
  @Field() title!: string;
  @Field() body!: string;
  @Field() createdAt!: Date;
  @Field(() => Date, { nullable: true, description: 'When it was first marked read; null while unread' }) readAt!: Date | null;
}

@ObjectType()
export class MessageEdge {
  @Field() cursor!: string;
  @Field(() => Message) node!: Message;
}

@ObjectType()
export class MessageConnection {
  @Field(() => [MessageEdge]) edges!: MessageEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@ArgsType()
export class MessagesArgs extends ConnectionArgs {
  @Field(() => Boolean, { nullable: true, description: 'Only messages not yet read' }) @IsOptional() @IsBoolean() unreadOnly?: boolean | null;
}
